/** Two or more checkpoints side by side; only what differs unless asked for everything. */
import type { Comparison } from '@ckpt/core';
import { InvalidArgumentError } from '@ckpt/core';
import { type Html, html, num, query, seg } from '../html.js';
import type { Workspace } from '../workspace.js';

export interface CompareParams {
  ids: string[];
  /** Show rows that are the same too. */
  all: boolean;
  /** Read the tensors to compare them (default on). */
  tensors: boolean;
}

export function compareParams(ids: string[], q: Record<string, string>): CompareParams {
  const list = ids.flatMap((id) => id.split(',')).filter(Boolean);
  return { ids: [...new Set(list)].slice(0, 10), all: q.all === '1', tensors: q.tensors !== '0' };
}

export interface CompareData extends Comparison {
  /** Every configuration value, flattened to dotted keys: key -> id -> value (for "show everything"). */
  allConfig: Record<string, Record<string, unknown>>;
}

/** A config flattened to dotted keys, walked with a stack (bounded: a record's config is data from a file). */
function flatten(config: Record<string, unknown> | undefined): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const stack: Array<[string, unknown]> = [['', config ?? {}]];
  while (stack.length > 0 && out.size < 10_000) {
    const [prefix, value] = stack.pop() as [string, unknown];
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && prefix.split('.').length < 32) {
      for (const [k, v] of Object.entries(value)) stack.push([prefix ? `${prefix}.${k}` : k, v]);
    } else {
      out.set(prefix, value);
    }
  }
  return out;
}

export async function compareData(ws: Workspace, name: string, p: CompareParams): Promise<CompareData> {
  if (p.ids.length < 2) throw new InvalidArgumentError('compare: select at least two checkpoints');
  return ws.read(name, async (m) => {
    const comparison = await m.compare(p.ids, { tensors: p.tensors });
    const allConfig: Record<string, Record<string, unknown>> = Object.create(null);
    for (const id of comparison.ids) {
      for (const [key, value] of flatten((await m.get(id))?.config)) {
        allConfig[key] ??= Object.create(null);
        (allConfig[key] as Record<string, unknown>)[id] = value;
      }
    }
    return { ...comparison, allConfig };
  });
}

const same = (values: unknown[]) => values.every((v) => JSON.stringify(v) === JSON.stringify(values[0]));

export function comparePage(name: string, c: CompareData, p: CompareParams): Html {
  const base = `/e/${seg(name)}`;
  const metricRows = Object.entries(c.metrics).filter(([, byId]) => p.all || !same(c.ids.map((id) => byId[id])));
  const head = html`<thead><tr><th scope="col"></th>${c.ids.map((id) => html`<th scope="col"><a href="${base}/c/${seg(id)}">${id}</a></th>`)}</tr></thead>`;
  const toggle = `${base}/compare${query({ ids: p.ids.join(','), all: p.all ? '' : '1', tensors: p.tensors ? '' : '0' })}`;
  const tensorSections = Object.entries(c.tensors ?? {}).map(([id, diffs]) => {
    const rows = Object.entries(diffs).filter(([, d]) => p.all || d.status !== 'equal');
    return html`<h3>${id} against ${c.ids[0]}</h3>
    <p>${rows.length} of ${Object.keys(diffs).length} tensors shown</p>
    <table class="grid small"><thead><tr><th scope="col">Tensor</th><th scope="col">Status</th><th scope="col" class="num">max |Δ|</th><th scope="col" class="num">mean |Δ|</th></tr></thead>
    <tbody>${rows.map(([t, d]) => html`<tr><td><code>${t}</code></td><td>${d.status}${d.detail ? ` (${d.detail})` : ''}</td><td class="num">${num(d.maxAbsDiff)}</td><td class="num">${num(d.meanAbsDiff)}</td></tr>`)}</tbody></table>`;
  });
  return html`<h1>Compare ${c.ids.length} checkpoints</h1>
  <p><a href="${toggle}">${p.all ? 'Only differences' : 'Show everything'}</a> · <a href="${base}${query({ sel: p.ids.join(',') })}">Back to the list</a></p>
  <h2>Metrics</h2>
  ${
    metricRows.length > 0
      ? html`<table class="grid">${head}<tbody>
    <tr><th scope="row">epoch</th>${c.ids.map((id) => html`<td class="num">${num(c.epochs[id])}</td>`)}</tr>
    <tr><th scope="row">step</th>${c.ids.map((id) => html`<td class="num">${num(c.steps[id])}</td>`)}</tr>
    ${metricRows.map(([metric, byId]) => html`<tr><th scope="row">${metric}</th>${c.ids.map((id) => html`<td class="num">${num(byId[id])}</td>`)}</tr>`)}
  </tbody></table>`
      : html`<p>No metric differs.</p>`
  }
  <h2>Config</h2>
  ${Object.keys(p.all ? c.allConfig : c.config).length > 0 ? html`<table class="grid">${head}<tbody>${Object.entries(p.all ? c.allConfig : c.config).map(([key, byId]) => html`<tr><th scope="row"><code>${key}</code></th>${c.ids.map((id) => html`<td><code>${byId[id] === undefined ? '(absent)' : JSON.stringify(byId[id])}</code></td>`)}</tr>`)}</tbody></table>` : html`<p>No config value differs.</p>`}
  <h2>Tensors</h2>
  ${p.tensors ? tensorSections : html`<p><a href="${base}/compare${query({ ids: p.ids.join(','), all: p.all ? '1' : '' })}">Compare the tensors</a> (reads every tensor)</p>`}`;
}
