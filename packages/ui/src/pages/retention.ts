/** What retention would delete now, and why each checkpoint stays or goes. */
import { type CheckpointRecord, keepBest, keepLatest, type RetentionPolicy } from '@ckpt/core';
import { bytes, type Html, html, num, seg } from '../html.js';
import type { Workspace } from '../workspace.js';

export interface RetentionRow {
  id: string;
  epoch: number | null;
  step: number | null;
  size: number;
  decision: 'delete' | 'keep';
  reason: string;
}

export interface RetentionData {
  experiment: string;
  /** Whether this experiment's settings name any retention policy. */
  policies: string[];
  rows: RetentionRow[];
}

/** Why a checkpoint stays when retention runs: the manager's invariants first, then the policies. */
function keptBecause(r: CheckpointRecord): string {
  if (r.isBest) return 'the best checkpoint is always kept';
  if (r.isLatest) return 'the latest checkpoint is always kept';
  if (r.protected) return 'protected';
  if (r.status !== 'ok') return `${r.status}: retention only removes checkpoints that verify`;
  return 'a retention policy keeps it';
}

/** The policies the form sets, as the command line's `ckpt prune --keep-last N --keep-best K`. */
export function retentionPolicies(keep: { last: number; best: number }): RetentionPolicy[] {
  return [keepLatest(keep.last), keepBest(keep.best)];
}

export async function retentionData(
  ws: Workspace,
  name: string,
  keep: { last: number; best: number },
): Promise<RetentionData> {
  return ws.read(
    name,
    async (m) => {
      const all = await m.list();
      const doomed = new Set((await m.retentionPlan()).map((r) => r.id));
      return {
        experiment: name,
        policies: [`keep the latest ${keep.last}`, `keep the best ${keep.best}`],
        rows: all.map((r) => ({
          id: r.id,
          epoch: r.epoch,
          step: r.step,
          size: r.size,
          decision: doomed.has(r.id) ? 'delete' : 'keep',
          reason: doomed.has(r.id) ? 'no policy keeps it' : keptBecause(r),
        })),
      };
    },
    { retention: retentionPolicies(keep) },
  );
}

/** The form's numbers, bounded. */
export function keepParams(
  q: Record<string, string | undefined>,
  configured: { keepLast?: number; keepBest?: number } = {},
): { last: number; best: number } {
  const bounded = (text: string | undefined, fallback: number, min: number) => {
    const value = Number.parseInt(text ?? '', 10);
    return Number.isFinite(value) ? Math.min(100_000, Math.max(min, value)) : fallback;
  };
  // The query, else the config file's retention (as `ckpt prune`), else the latest 1 and the best 3.
  return { last: bounded(q.last, configured.keepLast ?? 1, 1), best: bounded(q.best, configured.keepBest ?? 3, 0) };
}

export function retentionPage(d: RetentionData, keep: { last: number; best: number }): Html {
  const base = `/e/${seg(d.experiment)}/retention`;
  const going = d.rows.filter((r) => r.decision === 'delete');
  return html`<h1>Retention of ${d.experiment}</h1>
  <form class="filters" method="get" action="${base}">
    <label>Keep the latest <input name="last" type="number" min="1" max="100000" value="${keep.last}"></label>
    <label>and the best <input name="best" type="number" min="0" max="100000" value="${keep.best}"></label>
    <button type="submit">Preview</button>
  </form>
  <p>${going.length} of ${d.rows.length} checkpoints would be deleted (${bytes(going.reduce((s, r) => s + r.size, 0))}). The best, the latest and protected checkpoints are always kept.</p>
  ${
    going.length > 0
      ? html`<form method="post" action="${base}" class="action">
      <input type="hidden" name="last" value="${keep.last}"><input type="hidden" name="best" value="${keep.best}">
      <label><input type="checkbox" name="confirm" value="yes" required> I want these ${going.length} checkpoints deleted</label>
      <button type="submit" class="danger">Apply retention</button></form>`
      : ''
  }
  <table class="grid" aria-label="retention plan"><thead><tr><th scope="col">Checkpoint</th><th scope="col" class="num">Epoch</th><th scope="col" class="num">Step</th><th scope="col" class="num">Size</th><th scope="col">Decision</th><th scope="col">Why</th></tr></thead>
  <tbody>${d.rows.map((r) => html`<tr class="${r.decision}"><td><a href="/e/${seg(d.experiment)}/c/${seg(r.id)}">${r.id}</a></td><td class="num">${num(r.epoch)}</td><td class="num">${num(r.step)}</td><td class="num">${bytes(r.size)}</td><td>${r.decision}</td><td>${r.reason}</td></tr>`)}</tbody></table>`;
}
