/** The checkpoints of one experiment: filters, sorting and selection, all in the URL. */
import type { CheckpointRecord, ListFilter } from '@ckpt/core';
import { bytes, type Html, html, num, query, seg, when } from '../html.js';
import type { Workspace } from '../workspace.js';
import { pager } from './experiments.js';

export const CHECKPOINTS_PER_PAGE = 500;
const METRIC_COLUMNS = 8;

export interface CheckpointsParams {
  tag?: string;
  status?: string;
  minEpoch?: string;
  maxEpoch?: string;
  metric?: string;
  min?: string;
  max?: string;
  protected?: string;
  sort?: string;
  order?: 'asc' | 'desc';
  page: number;
  /** Selected ids, comma-separated. */
  sel?: string;
}

const KEYS = ['tag', 'status', 'minEpoch', 'maxEpoch', 'metric', 'min', 'max', 'protected', 'sort', 'sel'] as const;

export function checkpointsParams(q: Record<string, string>): CheckpointsParams {
  const p: CheckpointsParams = {
    page: Math.max(1, Math.min(1_000_000, Number.parseInt(q.page ?? '1', 10) || 1)),
    order: q.order === 'desc' ? 'desc' : 'asc',
  };
  for (const key of KEYS) if (q[key]) p[key] = q[key];
  return p;
}

/** A number from a query, or undefined; anything else is refused by the manager's own checks. */
function numberOf(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

export function listFilter(p: CheckpointsParams): ListFilter {
  const metricBounds = p.metric
    ? {
        metric: {
          name: p.metric,
          ...(numberOf(p.min) !== undefined ? { min: numberOf(p.min) } : {}),
          ...(numberOf(p.max) !== undefined ? { max: numberOf(p.max) } : {}),
        },
      }
    : {};
  return {
    ...(p.tag ? { tag: p.tag } : {}),
    ...(p.status === 'ok' || p.status === 'missing' || p.status === 'corrupted' ? { status: p.status } : {}),
    ...(numberOf(p.minEpoch) !== undefined ? { minEpoch: numberOf(p.minEpoch) } : {}),
    ...(numberOf(p.maxEpoch) !== undefined ? { maxEpoch: numberOf(p.maxEpoch) } : {}),
    ...(p.protected === 'yes' ? { protected: true } : p.protected === 'no' ? { protected: false } : {}),
    ...metricBounds,
    sortBy: p.sort ?? 'sequence',
    order: p.order ?? 'asc',
  } as ListFilter;
}

export interface CheckpointsData {
  experiment: string;
  total: number;
  page: number;
  pages: number;
  metrics: string[];
  checkpoints: CheckpointRecord[];
}

export async function checkpointsData(ws: Workspace, name: string, p: CheckpointsParams): Promise<CheckpointsData> {
  const filter = listFilter(p);
  // Only the page's records are copied out of the index: a list of 10,000 stays cheap.
  const [total, checkpoints, latest] = await ws.read(name, (m) =>
    Promise.all([
      m.count(filter),
      m.list({ ...filter, offset: (p.page - 1) * CHECKPOINTS_PER_PAGE, limit: CHECKPOINTS_PER_PAGE }),
      m.list({ order: 'desc', limit: 50 }),
    ]),
  );
  const names = new Set<string>();
  for (const r of [...checkpoints, ...latest])
    for (const key of Object.keys(r.metrics)) if (names.size < METRIC_COLUMNS) names.add(key);
  return {
    experiment: name,
    total,
    page: p.page,
    pages: Math.max(1, Math.ceil(total / CHECKPOINTS_PER_PAGE)),
    metrics: [...names].sort(),
    checkpoints,
  };
}

function flags(r: CheckpointRecord): Html {
  return html`${r.isBest ? html`<span class="flag best">best</span> ` : ''}${r.isLatest ? html`<span class="flag latest">latest</span> ` : ''}${r.protected ? html`<span class="flag protected">protected</span>` : ''}`;
}

export function checkpointsPage(data: CheckpointsData, p: CheckpointsParams): Html {
  const base = `/e/${seg(data.experiment)}`;
  const selected = new Set((p.sel ?? '').split(',').filter(Boolean));
  const sortLink = (key: string, label: string) => {
    const active = (p.sort ?? 'sequence') === key;
    const order = active && p.order === 'asc' ? 'desc' : 'asc';
    return html`<a href="${base}${query({ ...p, sort: key, order, page: 1 })}" ${active ? html`aria-sort="${p.order === 'desc' ? 'descending' : 'ascending'}"` : ''}>${label}</a>`;
  };
  return html`<h1>Checkpoints of ${data.experiment}</h1>
  <form class="filters" method="get" action="${base}" role="search">
    <label>Tag <input name="tag" value="${p.tag ?? ''}"></label>
    <label>Status <select name="status">${['', 'ok', 'missing', 'corrupted'].map((s) => html`<option value="${s}" ${p.status === s ? 'selected' : ''}>${s || 'any'}</option>`)}</select></label>
    <label>From epoch <input name="minEpoch" inputmode="numeric" size="4" value="${p.minEpoch ?? ''}"></label>
    <label>to epoch <input name="maxEpoch" inputmode="numeric" size="4" value="${p.maxEpoch ?? ''}"></label>
    <label>Metric <input name="metric" list="metric-names" size="10" value="${p.metric ?? ''}"></label>
    <datalist id="metric-names">${data.metrics.map((m) => html`<option value="${m}"></option>`)}</datalist>
    <label>min <input name="min" inputmode="decimal" size="6" value="${p.min ?? ''}"></label>
    <label>max <input name="max" inputmode="decimal" size="6" value="${p.max ?? ''}"></label>
    <label>Protected <select name="protected">${['', 'yes', 'no'].map((s) => html`<option value="${s}" ${p.protected === s ? 'selected' : ''}>${s || 'any'}</option>`)}</select></label>
    ${p.sort ? html`<input type="hidden" name="sort" value="${p.sort}"><input type="hidden" name="order" value="${p.order}">` : ''}
    <button type="submit">Filter</button> <a href="${base}">Clear</a>
  </form>
  <form id="selection" method="get" action="${base}/compare" class="bulk">
    <p class="count" aria-live="polite"><span data-selected>${selected.size}</span> selected of ${data.total.toLocaleString('en-US')} checkpoint${data.total === 1 ? '' : 's'}</p>
    <button type="submit">Compare selected</button>
    <button type="submit" formmethod="post" formaction="${base}/verify">Verify selected</button>
  </form>
  <table class="grid" aria-label="checkpoints">
    <thead><tr><th scope="col"><span class="visually-hidden">Select</span></th>
      <th scope="col">${sortLink('sequence', 'Id')}</th><th scope="col">${sortLink('epoch', 'Epoch')}</th><th scope="col">${sortLink('step', 'Step')}</th>
      <th scope="col">${sortLink('timestamp', 'Saved')}</th><th scope="col">${sortLink('size', 'Size')}</th><th scope="col">Format</th>
      ${data.metrics.map((m) => html`<th scope="col" class="num">${sortLink(`metric:${m}`, m)}</th>`)}
      <th scope="col">Flags</th><th scope="col">Tags</th><th scope="col">Status</th></tr></thead>
    <tbody>${data.checkpoints.map(
      (r) => html`<tr data-id="${r.id}">
      <td><input type="checkbox" name="ids" value="${r.id}" form="selection" aria-label="select ${r.id}" ${selected.has(r.id) ? 'checked' : ''}></td>
      <td><a href="${base}/c/${seg(r.id)}">${r.id}</a></td><td class="num">${num(r.epoch)}</td><td class="num">${num(r.step)}</td>
      <td>${when(r.timestamp)}</td><td class="num">${bytes(r.size)}</td><td>${r.format}</td>
      ${data.metrics.map((m) => html`<td class="num">${num(r.metrics[m])}</td>`)}
      <td>${flags(r)}</td><td>${r.tags.map((t) => html`<span class="tag">${t}</span> `)}</td>
      <td><span class="status ${r.status}">${r.status}</span></td></tr>`,
    )}</tbody>
  </table>
  ${pager(base, p, data.page, data.pages)}`;
}
