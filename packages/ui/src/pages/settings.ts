/**
 * The manager's configuration as the config file holds it (the `checkpoints:`
 * section): shown with where each value comes from, checked with the same
 * rules and messages as the command line, and saved into the file atomically,
 * its comments and other sections kept.
 */
import { readFileSync } from 'node:fs';
import {
  checkSetting,
  InvalidArgumentError,
  SETTINGS,
  type SettingKey,
  type SettingRow,
  type Settings,
} from '@ckpt/core';
import { writeFileAtomic } from '@ckpt/native';
import { parseDocument } from 'yaml';
import { type Html, html } from '../html.js';

/** The settings this page edits: the manager's, not the folders'. */
export const EDITABLE = SETTINGS.filter(
  (row) => row.key.startsWith('checkpoints.') && !['checkpoints.directory', 'checkpoints.experiment'].includes(row.key),
) as readonly SettingRow[];

const get = (settings: Settings, key: string): unknown =>
  key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], settings);

/** The form's values checked: a value per key, or `undefined` to remove it from the file. */
export function settingsFromForm(form: Record<string, string>): Map<SettingKey, string | number | boolean | undefined> {
  const out = new Map<SettingKey, string | number | boolean | undefined>();
  for (const row of EDITABLE) {
    const key = row.key as SettingKey;
    const text = (form[key] ?? '').trim();
    let value: unknown;
    if (row.type === 'boolean') value = text === 'on' || text === 'true';
    else if (text === '') value = undefined;
    else if (row.type === 'count') value = /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
    else value = text;
    if (value === undefined) {
      out.set(key, undefined);
      continue;
    }
    const checked = checkSetting(row, value, 'settings');
    // A value equal to the default need not be written.
    out.set(key, checked === row.default ? undefined : checked);
  }
  return out;
}

/** Writes `values` into the config file's `checkpoints:` section, keeping everything else in it. */
export async function saveSettings(
  path: string,
  values: Map<SettingKey, string | number | boolean | undefined>,
): Promise<void> {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0)
    throw new InvalidArgumentError(`${path} is not valid YAML: ${doc.errors[0]?.message}`, { path });
  for (const [key, value] of values) {
    const at = key.split('.');
    if (value !== undefined) {
      doc.setIn(at, value);
      continue;
    }
    if (!doc.hasIn(at)) continue;
    doc.deleteIn(at);
    // A section left empty goes too (no `save: {}` in the file).
    for (let depth = at.length - 1; depth > 0; depth--) {
      const parent = doc.getIn(at.slice(0, depth)) as { items?: unknown[] } | undefined;
      if (!parent?.items || parent.items.length > 0) break;
      doc.deleteIn(at.slice(0, depth));
    }
  }
  await writeFileAtomic(path, [Buffer.from(doc.toString())], { fsync: true });
}

function field(row: SettingRow, settings: Settings): Html {
  const key = row.key;
  const value = get(settings, key);
  const origin = settings.origins[key as SettingKey] ?? 'default';
  const id = `s-${key.replaceAll('.', '-')}`;
  const label = key.replace(/^checkpoints\./, '');
  const note = html`<small>${row.description}; now from ${origin}</small>`;
  if (row.type === 'boolean') {
    return html`<div class="field"><label for="${id}"><input type="checkbox" id="${id}" name="${key}" ${value ? 'checked' : ''}> ${label}</label> ${note}</div>`;
  }
  if (Array.isArray(row.type)) {
    return html`<div class="field"><label for="${id}">${label}</label> <select id="${id}" name="${key}">${row.type.map((o) => html`<option ${o === value ? 'selected' : ''}>${o}</option>`)}</select> ${note}</div>`;
  }
  return html`<div class="field"><label for="${id}">${label}</label> <input id="${id}" name="${key}" ${row.type === 'count' ? html`inputmode="numeric"` : ''} value="${value === undefined ? '' : String(value)}"> ${note}</div>`;
}

export function settingsPage(settings: Settings, path: string): Html {
  return html`<h1>Settings</h1>
  <p>How every experiment under <code>${settings.checkpoints.directory}</code> is managed, as <code>${path}</code> holds it${settings.source ? '' : ' (not written yet)'}. The command line and this interface open managers with these. Flags and environment variables still win over the file.</p>
  <form method="post" action="/settings" class="stacked">
    ${EDITABLE.map((row) => field(row, settings))}
    <button type="submit">Save to ${path}</button>
  </form>`;
}
