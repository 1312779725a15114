/** Questions about an experiment's checkpoints: lists (filtered, sorted) and a summary. */
import { InvalidArgumentError } from '../errors.js';
import type { ManagerContext } from './context.js';
import { OrderedPage, type SortKey } from './ordering.js';
import { findBest, findLatest } from './ranking.js';
import type { CheckpointRecord, CheckpointStatus, StoredRecord } from './record.js';

export interface ListFilter {
  tag?: string;
  /** Every one of these tags. */
  tags?: string[];
  epoch?: number;
  minEpoch?: number;
  maxEpoch?: number;
  step?: number;
  /** Metric bounds, inclusive: `{ name: 'val_loss', max: 0.5 }`. */
  metric?: { name: string; min?: number; max?: number };
  status?: CheckpointStatus;
  protected?: boolean;
  /** `'sequence'` (default), `'epoch'`, `'step'`, `'timestamp'`, `'size'`, or `'metric:<name>'`. */
  sortBy?: string;
  order?: 'asc' | 'desc';
  /** Skip this many (after sorting). */
  offset?: number;
  limit?: number;
}

export interface Summary {
  experiment: string;
  model: string;
  folder: string;
  count: number;
  totalSize: number;
  best: { id: string; metrics: Record<string, number> } | null;
  latest: { id: string; epoch: number | null; step: number | null } | null;
  byTag: Record<string, number>;
  byStatus: Record<CheckpointStatus, number>;
  /** Checkpoints that are missing or corrupted. */
  problems: Array<{ id: string; status: CheckpointStatus }>;
  protected: number;
  backedUp: number;
}

/** Whether a record passes `filter` (its sorting and paging aside). */
function filterOf(f: ListFilter): (r: StoredRecord) => boolean {
  return (r) =>
    (f.tag === undefined || r.tags.includes(f.tag)) &&
    (f.tags === undefined || f.tags.every((t) => r.tags.includes(t))) &&
    (f.epoch === undefined || r.epoch === f.epoch) &&
    (f.minEpoch === undefined || (r.epoch !== null && r.epoch >= f.minEpoch)) &&
    (f.maxEpoch === undefined || (r.epoch !== null && r.epoch <= f.maxEpoch)) &&
    (f.step === undefined || r.step === f.step) &&
    (f.status === undefined || r.status === f.status) &&
    (f.protected === undefined || r.protected === f.protected) &&
    (f.metric === undefined || inRange(r.metrics[f.metric.name], f.metric.min, f.metric.max));
}

/** The checkpoints, oldest first unless sorted otherwise, filtered; `offset` and `limit` page them. */
export async function listRecords(ctx: ManagerContext, filter: ListFilter): Promise<CheckpointRecord[]> {
  const f = filter;
  const start = f.offset ?? 0;
  const page = new OrderedPage(
    sortKey(f.sortBy ?? 'sequence'),
    f.order === 'desc' ? -1 : 1,
    f.limit === undefined ? Number.POSITIVE_INFINITY : start + f.limit,
  );
  const passes = filterOf(f);
  for (const record of (await ctx.index()).checkpoints) if (passes(record)) page.offer(record);
  return page
    .records()
    .slice(start)
    .map((r) => ctx.withPath(r)); // copies only what is returned
}

/** How many checkpoints pass `filter` (its sorting and paging aside). */
export async function countRecords(ctx: ManagerContext, filter: ListFilter): Promise<number> {
  const passes = filterOf(filter);
  let count = 0;
  for (const record of (await ctx.index()).checkpoints) if (passes(record)) count++;
  return count;
}

/** Counts, sizes, best, latest, tags and problems. */
export async function summarize(ctx: ManagerContext): Promise<Summary> {
  const { o } = ctx;
  const index = await ctx.index();
  const records = index.checkpoints;
  const byTag: Record<string, number> = Object.create(null); // tags come from the index
  for (const r of records) for (const t of r.tags) byTag[t] = (byTag[t] ?? 0) + 1;
  const byStatus: Record<CheckpointStatus, number> = { ok: 0, missing: 0, corrupted: 0 };
  for (const r of records) byStatus[r.status]++;
  const best = findBest(records, o.score);
  const latest = findLatest(records);
  return {
    experiment: o.experiment,
    // The folder's own word first: a reader that opened it without naming the model must not report the default.
    model: latest?.model || index.model || o.model,
    folder: ctx.folder,
    count: records.length,
    totalSize: records.reduce((sum, r) => sum + (r.status === 'missing' ? 0 : r.size), 0),
    best: best ? { id: best.id, metrics: { ...best.metrics } } : null,
    latest: latest ? { id: latest.id, epoch: latest.epoch, step: latest.step } : null,
    byTag,
    byStatus,
    problems: records.filter((r) => r.status !== 'ok').map((r) => ({ id: r.id, status: r.status })),
    protected: records.filter((r) => r.protected).length,
    backedUp: records.filter((r) => r.backup).length,
  };
}

function inRange(value: number | undefined, min?: number, max?: number): boolean {
  if (value === undefined || Number.isNaN(value)) return false;
  return (min === undefined || value >= min) && (max === undefined || value <= max);
}

function sortKey(by: string): (r: StoredRecord) => SortKey {
  if (by.startsWith('metric:')) {
    const name = by.slice('metric:'.length);
    return (r) => r.metrics[name];
  }
  switch (by) {
    case 'sequence':
      return (r) => r.sequence;
    case 'epoch':
      return (r) => r.epoch ?? undefined;
    case 'step':
      return (r) => r.step ?? undefined;
    case 'timestamp':
      return (r) => r.timestamp;
    case 'size':
      return (r) => r.size;
    default:
      throw new InvalidArgumentError(`list: cannot sort by ${JSON.stringify(by)}`, {
        expected: "sequence, epoch, step, timestamp, size or 'metric:<name>'",
      });
  }
}
