/**
 * Which of a bucket's checkpoints is latest, which is best, and which
 * retention retires: pure functions over the index's records.
 */
import type { BucketRecord, IndexData } from './index-object.js';

export interface BestSetting {
  monitor: string;
  mode: 'min' | 'max';
}

/** The highest step; ties go to the one created last. */
export function latestOf(records: readonly BucketRecord[]): BucketRecord | undefined {
  return [...records].sort((a, b) => b.step - a.step || b.created.localeCompare(a.created))[0];
}

/** The best by `best`'s metric, or undefined (no setting, or no record has the metric). */
export function bestOf(records: readonly BucketRecord[], best: BestSetting | undefined): BucketRecord | undefined {
  if (!best) return undefined;
  const scored = records.filter((r) => typeof r.metrics[best.monitor] === 'number');
  const sign = best.mode === 'max' ? -1 : 1;
  // Ties go to the earlier checkpoint: a later one must improve to take over.
  return scored.reduce<BucketRecord | undefined>(
    (winner, r) =>
      winner === undefined ||
      sign * ((r.metrics[best.monitor] as number) - (winner.metrics[best.monitor] as number)) < 0
        ? r
        : winner,
    undefined,
  );
}

/**
 * Moves the records past `keepLast` (oldest first by step, then time) to
 * `deleting` and returns them. The best and the protected ones are never
 * retired and do not count against `keepLast`.
 */
export function retire(index: IndexData, keepLast: number | undefined, best: BestSetting | undefined): BucketRecord[] {
  if (keepLast === undefined) return [];
  const kept = bestOf(index.records, best);
  const order = index.records
    .filter((r) => r.id !== kept?.id && !r.protected)
    .sort((a, b) => a.step - b.step || a.created.localeCompare(b.created));
  const expired = order.slice(0, Math.max(0, order.length - keepLast));
  const gone = new Set(expired.map((r) => r.id));
  index.records = index.records.filter((r) => !gone.has(r.id));
  for (const r of expired) if (!index.deleting.includes(r.key)) index.deleting.push(r.key);
  return expired;
}
