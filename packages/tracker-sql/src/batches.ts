/**
 * Metric points on their way to the server. Points queue in memory; a full
 * queue (or the timer, `flush()`, `close()`) cuts a batch with a fresh key,
 * and one writer sends batches in order, each in one transaction that first
 * records its key. A batch whose commit answer was lost (the connection
 * dropped) is sent again with the same key: the server finds the key and the
 * batch is not written twice. A batch that cannot be written stays at the
 * head of the queue for the next attempt; nothing acknowledged is lost.
 */
import { randomUUID } from 'node:crypto';
import { addToSummary, NotFoundError, type SeriesSummary, TrackerError } from '@ckpt/core';
import type { SqlDriver, SqlSession, SqlValue } from './driver.js';
import { type RetryOptions, withRetries } from './retry.js';

export interface BatchOptions extends RetryOptions {
  /** Cut a batch once this many points wait (default 25 000: a round trip to a server costs more than a local write). */
  maxBuffered?: number;
  /** Cut a batch at least this often while points wait (default 1000 ms; 0: only on size, flush and close). */
  flushIntervalMs?: number;
  /** Where batch keys come from (default: random UUIDs). Tests pass their own to prove a key is written once. */
  batchKey?: () => string;
}

/** Points kept as columns: no object per point. */
class Points {
  experimentIds: number[] = [];
  names: string[] = [];
  /** NaN: no step given. */
  steps: number[] = [];
  values: number[] = [];
  timestamps: number[] = [];
  get length(): number {
    return this.values.length;
  }
}

interface Batch {
  key: string;
  points: Points;
}

const POINT_COLUMNS = ['series_id', 'seq', 'step', 'value', 'logged_at'] as const;

export class BatchWriter {
  #points = new Points();
  readonly #queue: Batch[] = [];
  #queued = 0;
  /** The writer's run in progress; resolves to its failure, if any. */
  #writing: Promise<unknown> | undefined;
  /** Why the last run stopped short (cleared by a run that empties the queue). */
  #failure: unknown;
  /** Callers waiting for room in the queue (back-pressure). */
  #waiting: Array<() => void> = [];
  #timer: NodeJS.Timeout | undefined;
  /** experiment id -> metric name -> series id, for series known to be committed. */
  readonly #seriesIds = new Map<number, Map<string, number>>();
  readonly #maxBuffered: number;
  readonly #intervalMs: number;

  constructor(
    private readonly driver: SqlDriver,
    private readonly options: BatchOptions,
  ) {
    this.#maxBuffered = options.maxBuffered ?? 25_000;
    this.#intervalMs = options.flushIntervalMs ?? 1000;
  }

  /** Points not yet stored (waiting and in batches). */
  get size(): number {
    return this.#points.length + this.#queued;
  }

  push(experimentId: number, name: string, step: number | undefined, value: number, timestamp: number) {
    if (this.#failure !== undefined && this.size >= this.#maxBuffered * 10) {
      throw new TrackerError(`${this.size} metric points could not be written to ${this.driver.location}`, {
        code: 'CKPT_TRACKER_BACKLOG',
        cause: this.#failure,
      });
    }
    const p = this.#points;
    p.experimentIds.push(experimentId);
    p.names.push(name);
    p.steps.push(step ?? Number.NaN);
    p.values.push(value);
    p.timestamps.push(timestamp);
    if (p.length >= this.#maxBuffered) {
      this.#cut();
      void this.#drain();
      // One batch in flight while the caller fills the next: the caller waits only when a second one is queued.
      if (this.#queue.length > 1) return new Promise<void>((resolve) => this.#waiting.push(resolve));
      return undefined;
    }
    if (!this.#timer && this.#intervalMs > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#cut();
        void this.#drain();
      }, this.#intervalMs);
      this.#timer.unref();
    }
    return undefined;
  }

  /** Sends everything waiting; rejects with the first failure (the points stay queued). */
  async flush(): Promise<void> {
    this.#cut();
    const failure = await this.#drain();
    if (failure !== undefined) throw failure;
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #cut(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#points.length === 0) return;
    this.#queue.push({ key: (this.options.batchKey ?? randomUUID)(), points: this.#points });
    this.#queued += this.#points.length;
    this.#points = new Points();
  }

  /**
   * Starts the writer if it is idle. Resolves when the queue is empty (to
   * undefined) or a batch could not be written (to that error, the batch kept
   * at the head for the next run). Never rejects.
   */
  #drain(): Promise<unknown> {
    this.#writing ??= this.#run();
    return this.#writing;
  }

  async #run(): Promise<unknown> {
    await Promise.resolve(); // so that #writing is set before anything below runs
    let failure: unknown;
    while (this.#queue.length > 0) {
      const batch = this.#queue[0] as Batch;
      try {
        await this.#send(batch);
      } catch (error) {
        failure = error;
        break;
      }
      this.#queue.shift();
      this.#queued -= batch.points.length;
      this.#wake();
    }
    this.#wake(); // also after a failure: the callers see it at their next flush
    // Synchronously with the last check of the queue: a batch cut from now on starts a new run.
    this.#failure = failure;
    this.#writing = undefined;
    return failure;
  }

  #wake(): void {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }

  async #send(batch: Batch): Promise<void> {
    const created: Array<[number, string, number]> = [];
    const missing = new Set<number>();
    await withRetries(this.driver, this.options, async () => {
      created.length = 0;
      missing.clear();
      await this.driver.transaction(async (s) => {
        const key = this.driver.dialect.insertIgnore('metric_batches', ['batch_key', 'committed_at']);
        if ((await s.run(key, [batch.key, Date.now()])) === 0) return; // written before: its answer was lost
        await this.#write(s, batch.points, created, missing);
      });
    });
    for (const [experimentId, name, id] of created) this.#remember(experimentId, name, id);
    if (missing.size > 0) {
      throw new NotFoundError(
        `no experiment with id ${[...missing].join(', ')} in ${this.driver.location}: its metric points were dropped`,
      );
    }
  }

  #remember(experimentId: number, name: string, id: number): void {
    let names = this.#seriesIds.get(experimentId);
    if (!names) {
      names = new Map();
      this.#seriesIds.set(experimentId, names);
    }
    names.set(name, id);
  }

  async #seriesId(
    s: SqlSession,
    experimentId: number,
    name: string,
    created: Array<[number, string, number]>,
  ): Promise<number | undefined> {
    const known = this.#seriesIds.get(experimentId)?.get(name);
    if (known !== undefined) return known;
    const exists = await s.rows('SELECT 1 AS found FROM experiments WHERE id = ?', [experimentId]);
    if (exists.length === 0) return undefined;
    await s.run(this.driver.dialect.insertIgnore('metric_series', ['experiment_id', 'name']), [experimentId, name]);
    // A locking read sees the row another writer committed since this transaction began
    // (a plain read under MySQL's REPEATABLE READ would not).
    const [row] = await s.rows<{ id: unknown }>(
      'SELECT id FROM metric_series WHERE experiment_id = ? AND name = ? FOR UPDATE',
      [experimentId, name],
    );
    if (!row) throw new TrackerError(`metric series ${name} of experiment ${experimentId} could not be created`);
    const id = Number(row.id);
    created.push([experimentId, name, id]);
    return id;
  }

  /** Inside the batch's transaction: series locked in id order, points appended, summaries updated. */
  async #write(
    s: SqlSession,
    points: Points,
    created: Array<[number, string, number]>,
    missing: Set<number>,
  ): Promise<void> {
    const groups = new Map<number, number[]>();
    const local = new Map<string, number | undefined>();
    for (let i = 0; i < points.length; i++) {
      const experimentId = points.experimentIds[i] as number;
      const name = points.names[i] as string;
      const lookup = `${experimentId}\u0000${name}`;
      let id = local.get(lookup);
      if (!local.has(lookup)) {
        id = await this.#seriesId(s, experimentId, name, created);
        local.set(lookup, id);
      }
      if (id === undefined) {
        missing.add(experimentId);
        continue;
      }
      let group = groups.get(id);
      if (!group) {
        group = [];
        groups.set(id, group);
      }
      group.push(i);
    }
    if (groups.size === 0) return;
    const ids = [...groups.keys()].sort((a, b) => a - b);
    const locked = await s.rows<{
      id: unknown;
      point_count: unknown;
      min_value: unknown;
      max_value: unknown;
      last_value: unknown;
      last_step: unknown;
    }>(
      `SELECT id, point_count, min_value, max_value, last_value, last_step FROM metric_series
       WHERE id IN (${ids.map(() => '?').join(', ')}) ORDER BY id FOR UPDATE`,
      ids,
    );
    const { dialect } = this.driver;
    const columns: SqlValue[][] = POINT_COLUMNS.map(() => []);
    const [seriesCol, seqCol, stepCol, valueCol, timeCol] = columns as [
      SqlValue[],
      SqlValue[],
      SqlValue[],
      SqlValue[],
      SqlValue[],
    ];
    const summaries: Array<[number, SeriesSummary]> = [];
    for (const row of locked) {
      const id = Number(row.id);
      const nullable = (v: unknown) => (v === null || v === undefined ? null : dialect.decodeDouble(v));
      const summary: SeriesSummary = {
        count: Number(row.point_count),
        min: nullable(row.min_value),
        max: nullable(row.max_value),
        lastStep: row.last_step === null ? null : Number(row.last_step),
        lastValue: nullable(row.last_value),
      };
      let seq = summary.count;
      for (const i of groups.get(id) ?? []) {
        const given = points.steps[i] as number;
        const step = Number.isNaN(given) ? (summary.lastStep === null ? 0 : summary.lastStep + 1) : given;
        const value = points.values[i] as number;
        seriesCol.push(id);
        seqCol.push(seq++);
        stepCol.push(step);
        valueCol.push(dialect.encodeDouble(value));
        timeCol.push(points.timestamps[i] as number);
        addToSummary(summary, step, value);
      }
      if (summary.count >= Number.MAX_SAFE_INTEGER) throw new TrackerError(`metric series ${id} is full`);
      summaries.push([id, summary]);
    }
    await s.insertRows('metric_points', POINT_COLUMNS, { length: seriesCol.length, values: columns });
    const encode = (v: number | null) => (v === null ? null : dialect.encodeDouble(v));
    for (const [id, m] of summaries) {
      await s.run(
        'UPDATE metric_series SET point_count = ?, min_value = ?, max_value = ?, last_value = ?, last_step = ? WHERE id = ?',
        [m.count, encode(m.min), encode(m.max), encode(m.lastValue), m.lastStep, id],
      );
    }
  }
}
