/**
 * When to save and what to keep, as small composable values (in the manner
 * of Orbax's save-decision and preservation policies).
 */
import { InvalidArgumentError } from '../errors.js';
import type { CheckpointRecord } from './record.js';

export interface SaveDecisionContext {
  epoch: number | null;
  step: number | null;
  metrics: Record<string, number>;
  now: number;
  /** The latest checkpoint saved, if any. */
  last: CheckpointRecord | undefined;
  /** The best checkpoint so far, if any. */
  best: CheckpointRecord | undefined;
  /** Scores a checkpoint's metrics as "best" does (higher is better), or undefined. */
  score: (metrics: Record<string, number>) => number | undefined;
}

/** Returns true to save, or the reason to skip. */
export type SavePolicy = (context: SaveDecisionContext) => true | string;

function positive(n: number, what: string): void {
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`${what} must be a positive number, got ${n}`);
}

/** Save when the epoch is a multiple of `n` (and at least once per new epoch). */
export function everyEpochs(n: number): SavePolicy {
  positive(n, 'everyEpochs');
  return ({ epoch }) =>
    epoch === null ? 'no epoch given' : epoch % n === 0 ? true : `epoch ${epoch} is not a multiple of ${n}`;
}

/** Save when the step is a multiple of `n`. */
export function everySteps(n: number): SavePolicy {
  positive(n, 'everySteps');
  return ({ step }) =>
    step === null ? 'no step given' : step % n === 0 ? true : `step ${step} is not a multiple of ${n}`;
}

/**
 * Save when at least `seconds` have passed since the last checkpoint. A last
 * checkpoint stamped in the future means the clock went back (a corrected
 * clock, another machine's): that saves at once rather than waiting for the
 * clock to catch up, and the count starts again from the new checkpoint.
 */
export function everySeconds(seconds: number): SavePolicy {
  positive(seconds, 'everySeconds');
  return ({ now, last }) => {
    if (!last) return true;
    const elapsed = (now - Date.parse(last.timestamp)) / 1000;
    if (!(elapsed >= 0)) return true; // the clock went back (or the timestamp is unreadable)
    return elapsed >= seconds ? true : `only ${elapsed.toFixed(1)} s since the last checkpoint, fewer than ${seconds}`;
  };
}

/** Save only when the monitored value (the manager's `best` setting) improves on the best so far. */
export function bestOnly(): SavePolicy {
  return ({ metrics, best, score }) => {
    const value = score(metrics);
    if (value === undefined) return 'the monitored metric is missing or NaN';
    const bestValue = best ? score(best.metrics) : undefined;
    return bestValue === undefined || value > bestValue ? true : 'not better than the best checkpoint';
  };
}

/** Save when `predicate` says so. */
export function when(
  predicate: (context: SaveDecisionContext) => boolean,
  reason = 'the save condition is false',
): SavePolicy {
  return (context) => (predicate(context) ? true : reason);
}

/** Save when any of the policies says to. */
export function anyOf(...policies: SavePolicy[]): SavePolicy {
  return (context) => {
    const reasons: string[] = [];
    for (const policy of policies) {
      const decision = policy(context);
      if (decision === true) return true;
      reasons.push(decision);
    }
    return reasons.join('; ');
  };
}

/** Save when all of the policies say to. */
export function allOf(...policies: SavePolicy[]): SavePolicy {
  return (context) => {
    for (const policy of policies) {
      const decision = policy(context);
      if (decision !== true) return decision;
    }
    return true;
  };
}

export interface RetentionContext {
  /** Scores metrics as "best" does (higher is better), or undefined. */
  score: (metrics: Record<string, number>) => number | undefined;
}

/**
 * Given the checkpoints (oldest first), returns the ids this policy keeps.
 * A checkpoint is deleted when no policy keeps it and it is not the best,
 * the latest, or protected.
 *
 * One rule for lists of policies, saves and retention alike: **a list acts
 * only when every policy in it agrees.** A save happens when every save
 * policy allows it (`allOf`); a checkpoint is deleted when every retention
 * policy lets it go, that is, when none keeps it (`keepIfAny`). Say the other
 * combination explicitly: `anyOf(...)` to save when any allows,
 * `keepIfAll(...)` to keep only what every policy keeps.
 */
export type RetentionPolicy = (records: readonly CheckpointRecord[], context: RetentionContext) => Set<string>;

/** Keeps the `n` most recent. */
export function keepLatest(n: number): RetentionPolicy {
  positive(n, 'keepLatest');
  return (records) => new Set(records.slice(-n).map((r) => r.id));
}

/** Keeps the `k` best by `monitor` (default: the manager's `best` setting). */
export function keepBest(k: number, options: { monitor?: string; mode?: 'min' | 'max' } = {}): RetentionPolicy {
  positive(k, 'keepBest');
  return (records, context) => {
    const score = options.monitor
      ? (m: Record<string, number>) => {
          const v = m[options.monitor as string];
          return v === undefined || Number.isNaN(v) ? undefined : options.mode === 'max' ? v : -v;
        }
      : context.score;
    const scored = records
      .map((r) => ({ id: r.id, value: score(r.metrics) }))
      .filter((r): r is { id: string; value: number } => r.value !== undefined);
    scored.sort((a, b) => b.value - a.value);
    return new Set(scored.slice(0, k).map((r) => r.id));
  };
}

/** Keeps every checkpoint whose epoch (or step) is a multiple of `n`. */
export function keepEvery(options: { epochs?: number; steps?: number }): RetentionPolicy {
  if (options.epochs !== undefined) positive(options.epochs, 'keepEvery epochs');
  if (options.steps !== undefined) positive(options.steps, 'keepEvery steps');
  return (records) =>
    new Set(
      records
        .filter(
          (r) =>
            (options.epochs !== undefined && r.epoch !== null && r.epoch % options.epochs === 0) ||
            (options.steps !== undefined && r.step !== null && r.step % options.steps === 0),
        )
        .map((r) => r.id),
    );
}

/** Keeps the first checkpoint of every `intervalMs` window (one per hour, say). */
export function keepOnePer(intervalMs: number): RetentionPolicy {
  positive(intervalMs, 'keepOnePer');
  return (records) => {
    const kept = new Set<string>();
    const windows = new Set<number>();
    for (const r of records) {
      const window = Math.floor(Date.parse(r.timestamp) / intervalMs);
      if (!windows.has(window)) {
        windows.add(window);
        kept.add(r.id);
      }
    }
    return kept;
  };
}

/** Keeps checkpoints carrying any of `tags`. */
export function keepTagged(...tags: string[]): RetentionPolicy {
  return (records) => new Set(records.filter((r) => r.tags.some((t) => tags.includes(t))).map((r) => r.id));
}

/** Keeps what any of the policies keeps (a list of retention policies means the same). */
export function keepIfAny(...policies: RetentionPolicy[]): RetentionPolicy {
  return (records, context) => {
    const kept = new Set<string>();
    for (const policy of policies) for (const id of policy(records, context)) kept.add(id);
    return kept;
  };
}

/** Keeps only what every policy keeps: `keepIfAll(keepTagged('release'), keepLatest(5))`, the latest 5 releases. */
export function keepIfAll(...policies: RetentionPolicy[]): RetentionPolicy {
  return (records, context) => {
    const [first, ...rest] = policies.map((policy) => policy(records, context));
    if (!first) return new Set();
    return new Set([...first].filter((id) => rest.every((kept) => kept.has(id))));
  };
}
