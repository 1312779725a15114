/**
 * Which checkpoint is best and which is latest, and finding checkpoints by
 * id, epoch, step or alias. Flags are derived from the records every time
 * the index is written, so they are exact across restarts and processes.
 */
import { InvalidArgumentError, NotFoundError, shown } from '../errors.js';
import type { StoredRecord } from './record.js';

/** Scores metrics: higher is better; undefined when the metric is missing or NaN. */
export type Score = (metrics: Record<string, number>) => number | undefined;

export interface BestSetting {
  monitor?: string;
  mode: 'min' | 'max';
}

export function monitorScore(monitor: string, mode: 'min' | 'max'): Score {
  return (metrics) => {
    const value = metrics[monitor];
    if (typeof value !== 'number' || Number.isNaN(value)) return undefined;
    return mode === 'max' ? value : -value;
  };
}

/** The best record: highest score; on a tie the earlier one stays best (improvement must be strict). */
export function findBest<R extends StoredRecord>(records: readonly R[], score: Score): R | undefined {
  let best: R | undefined;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (const record of records) {
    if (record.status === 'missing') continue;
    const value = score(record.metrics);
    if (value === undefined) continue;
    if (best === undefined || value > bestValue || (value === bestValue && record.sequence < best.sequence)) {
      best = record;
      bestValue = value;
    }
  }
  return best;
}

/** The most recently saved record that still has a file. */
export function findLatest<R extends StoredRecord>(records: readonly R[]): R | undefined {
  let latest: R | undefined;
  for (const record of records) {
    if (record.status === 'missing') continue;
    if (!latest || record.sequence > latest.sequence) latest = record;
  }
  return latest;
}

/**
 * Sets `isBest` and `isLatest` on every record, replacing (never editing) the
 * records whose flags change, so the index journals them; returns their ids.
 */
export function refreshFlags(records: StoredRecord[], score: Score): Set<string> {
  const best = findBest(records, score);
  const latest = findLatest(records);
  const changed = new Set<string>();
  records.forEach((record, i) => {
    const isBest = record === best;
    const isLatest = record === latest;
    if (record.isBest !== isBest || record.isLatest !== isLatest) {
      changed.add(record.id);
      records[i] = { ...record, isBest, isLatest };
    }
  });
  return changed;
}

/**
 * The flags after a save appended one record to records whose flags were
 * exact (as every write leaves them): the same result as `refreshFlags`,
 * without scanning every record. The new record is latest unless a record of
 * a higher sequence (a concurrent save that committed first) is; it is best
 * when it scores strictly higher than the previous best. At most three
 * records change; they are found from the end of the list. Returns the
 * records it replaced (the new objects).
 */
export function flagAppended(
  records: StoredRecord[],
  score: Score,
  previousBest: StoredRecord | undefined,
  previousLatest: StoredRecord | undefined,
): StoredRecord[] {
  const appended = records[records.length - 1] as StoredRecord;
  let best = previousBest;
  const value = appended.status === 'missing' ? undefined : score(appended.metrics);
  if (value !== undefined) {
    const bestValue = best ? score(best.metrics) : undefined;
    if (bestValue === undefined || value > bestValue) best = appended;
  }
  let latest = appended.status === 'missing' ? previousLatest : appended;
  if (previousLatest && latest && previousLatest.sequence > latest.sequence) latest = previousLatest;
  const replaced: StoredRecord[] = [];
  for (const record of new Set([appended, previousBest, previousLatest])) {
    if (!record) continue;
    const isBest = record === best;
    const isLatest = record === latest;
    if (record.isBest === isBest && record.isLatest === isLatest) continue;
    const at = records.lastIndexOf(record);
    if (at < 0) {
      // Not where the facts say: derive every flag from scratch.
      const changed = refreshFlags(records, score);
      return records.filter((r) => changed.has(r.id));
    }
    records[at] = { ...record, isBest, isLatest };
    replaced.push(records[at] as StoredRecord);
  }
  return replaced;
}

/**
 * A way to name a checkpoint: its id, `'best'`, `'latest'`, `{ epoch }`,
 * `{ step }` (the latest with that epoch or step), or `{ best: metric, mode }`.
 */
export type Selector =
  | string
  | { id: string }
  | { epoch: number }
  | { step: number }
  | { best: string; mode?: 'min' | 'max' };

/** Finds the record `selector` names, or undefined. */
export function select<R extends StoredRecord>(records: readonly R[], selector: Selector, score: Score): R | undefined {
  if (typeof selector === 'string') {
    if (selector === 'best') return findBest(records, score);
    if (selector === 'latest') return findLatest(records);
    return records.find((r) => r.id === selector);
  }
  if (typeof selector !== 'object' || selector === null) {
    throw new InvalidArgumentError(`cannot select a checkpoint by ${shown(selector)}`, {
      expected: "an id, 'best', 'latest', { epoch }, { step } or { best: metric }",
    });
  }
  if ('id' in selector) return records.find((r) => r.id === selector.id);
  if ('epoch' in selector) return findLatest(records.filter((r) => r.epoch === selector.epoch));
  if ('step' in selector) return findLatest(records.filter((r) => r.step === selector.step));
  if ('best' in selector) return findBest(records, monitorScore(selector.best, selector.mode ?? 'min'));
  throw new InvalidArgumentError(`cannot select a checkpoint by ${JSON.stringify(selector)}`, {
    expected: "an id, 'best', 'latest', { epoch }, { step } or { best: metric }",
  });
}

/** Like `select`, but a missing checkpoint is a NotFoundError naming the experiment. */
export function selectOrThrow<R extends StoredRecord>(
  records: readonly R[],
  selector: Selector,
  score: Score,
  where: string,
): R {
  const record = select(records, selector, score);
  if (!record) {
    throw new NotFoundError(`no checkpoint ${JSON.stringify(selector)} in ${where}`, {
      path: where,
      expected: `one of ${records.length} checkpoints (ids: ${records
        .slice(-5)
        .map((r) => r.id)
        .join(', ')}${records.length > 5 ? ', ...' : ''})`,
    });
  }
  return record;
}
