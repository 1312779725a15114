/**
 * Metric points wait in a bounded buffer and are written in one transaction
 * per batch: when the buffer is full, on a timer, on `flush()`, on close and
 * at process exit. A failed write keeps the points for the next attempt.
 */
import { NotFoundError, TrackerError } from '@ckpt/core';
import type Database from 'better-sqlite3';

export interface BufferOptions {
  maxBuffered: number;
  flushIntervalMs: number;
}

/** Rows per INSERT statement: fewer calls into SQLite per point. */
const ROWS_PER_INSERT = 250;
/** A point's id is its series id times this, plus its number in the series (see the schema). */
export const SERIES_SPAN = 2 ** 32;
/** Series ids stay below this so that point ids stay exact JavaScript numbers (< 2^53). */
const MAX_SERIES = 2 ** 21;

interface SeriesStats {
  count: number;
  min: number | null;
  max: number | null;
  lastStep: number | null;
  lastValue: number | null;
  /** Whether this batch reached or passed the stored last step. */
  advanced: boolean;
}

/** Points kept as typed columns: no object and no garbage per point. */
class Columns {
  length = 0;
  experimentIds: Float64Array;
  names: string[];
  /** NaN: no step given. */
  steps: Float64Array;
  values: Float64Array;
  timestamps: Float64Array;

  constructor(capacity: number) {
    this.experimentIds = new Float64Array(capacity);
    this.names = new Array(capacity);
    this.steps = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
    this.timestamps = new Float64Array(capacity);
  }

  push(experimentId: number, name: string, step: number | undefined, value: number, timestamp: number): void {
    if (this.length === this.values.length) this.#grow();
    const i = this.length++;
    this.experimentIds[i] = experimentId;
    this.names[i] = name;
    this.steps[i] = step ?? Number.NaN;
    this.values[i] = value;
    this.timestamps[i] = timestamp;
  }

  #grow(): void {
    const capacity = Math.max(16, this.values.length * 2);
    const grown = (old: Float64Array) => {
      const next = new Float64Array(capacity);
      next.set(old);
      return next;
    };
    this.experimentIds = grown(this.experimentIds);
    this.steps = grown(this.steps);
    this.values = grown(this.values);
    this.timestamps = grown(this.timestamps);
    this.names.length = capacity;
  }

  /** Appends `other`'s points after these. */
  append(other: Columns): void {
    for (let i = 0; i < other.length; i++) {
      const step = other.steps[i] as number;
      this.push(
        other.experimentIds[i] as number,
        other.names[i] as string,
        Number.isNaN(step) ? undefined : step,
        other.values[i] as number,
        other.timestamps[i] as number,
      );
    }
  }
}

export class MetricBuffer {
  #points: Columns;
  /** The other set of columns, reused so that a steady stream of points allocates nothing. */
  #spare: Columns | undefined;
  /** experiment id -> metric name -> series id. */
  readonly #seriesIds = new Map<number, Map<string, number>>();
  #timer: NodeJS.Timeout | undefined;
  /** The size at which a push writes a batch: `maxBuffered`, or another buffer's worth past a failed batch. */
  #flushAt: number;
  readonly #write: (points: Columns) => Set<number>;
  readonly #statements;

  constructor(
    db: Database.Database,
    private readonly options: BufferOptions,
  ) {
    const values = (n: number) => Array.from({ length: n }, () => '(?, ?, ?, ?)').join(', ');
    this.#statements = {
      insertSeries: db.prepare('INSERT OR IGNORE INTO metric_series (experiment_id, name) VALUES (?, ?)'),
      series: db.prepare('SELECT id FROM metric_series WHERE experiment_id = ? AND name = ?'),
      position: db.prepare('SELECT count, last_step FROM metric_series WHERE id = ?'),
      insertMany: db.prepare(
        `INSERT INTO metric_points (id, step, value, timestamp) VALUES ${values(ROWS_PER_INSERT)}`,
      ),
      insertOne: db.prepare('INSERT INTO metric_points (id, step, value, timestamp) VALUES (?, ?, ?, ?)'),
      summary: db.prepare(`UPDATE metric_series SET
          count = count + @count,
          min_value = coalesce(min(min_value, @min), min_value, @min),
          max_value = coalesce(max(max_value, @max), max_value, @max),
          last_value = CASE WHEN last_step IS NULL OR @lastStep >= last_step THEN @lastValue ELSE last_value END,
          last_step = CASE WHEN last_step IS NULL OR @lastStep >= last_step THEN @lastStep ELSE last_step END
        WHERE id = @id`),
      experimentExists: db.prepare('SELECT 1 FROM experiments WHERE id = ?'),
    };
    this.#points = new Columns(options.maxBuffered);
    this.#flushAt = options.maxBuffered;
    const transaction = db.transaction((points: Columns) => this.#writeBatch(points));
    // Returns the ids of experiments that do not exist: their points are dropped, and reported.
    this.#write = (points) => transaction.immediate(points);
  }

  get size(): number {
    return this.#points.length;
  }

  push(experimentId: number, name: string, step: number | undefined, value: number, timestamp: number): void {
    this.#points.push(experimentId, name, step, value, timestamp);
    // After a failed batch (a full disk, say), the next size-driven attempt waits for another
    // buffer's worth of points: retrying on every point would make each one cost a whole batch.
    if (this.#points.length >= this.#flushAt) this.flush();
    else if (!this.#timer && this.options.flushIntervalMs > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        try {
          this.flush();
        } catch {
          // Kept for the next flush; the caller sees the error there.
        }
      }, this.options.flushIntervalMs);
      this.#timer.unref();
    }
  }

  flush(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#points.length === 0) return;
    const points = this.#points;
    this.#points = this.#spare ?? new Columns(this.options.maxBuffered);
    this.#spare = undefined;
    try {
      const missing = this.#write(points);
      this.#flushAt = this.options.maxBuffered;
      points.length = 0;
      this.#spare = points;
      if (missing.size > 0) {
        throw new NotFoundError(`no experiment with id ${[...missing].join(', ')}: its metric points were dropped`);
      }
    } catch (error) {
      points.append(this.#points); // nothing is lost; retried next time
      this.#points = points;
      this.#flushAt = points.length + this.options.maxBuffered;
      if (this.#points.length > this.options.maxBuffered * 10) {
        throw new TrackerError(`${this.#points.length} metric points could not be written`, {
          code: 'CKPT_TRACKER_BACKLOG',
          cause: error,
        });
      }
      throw error;
    }
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #seriesId(experimentId: number, name: string): number | undefined {
    let names = this.#seriesIds.get(experimentId);
    if (!names) {
      names = new Map();
      this.#seriesIds.set(experimentId, names);
    }
    let id = names.get(name);
    if (id === undefined) {
      if (!this.#statements.experimentExists.get(experimentId)) return undefined;
      this.#statements.insertSeries.run(experimentId, name);
      id = (this.#statements.series.get(experimentId, name) as { id: number }).id;
      if (id >= MAX_SERIES) {
        throw new TrackerError(`the database holds ${MAX_SERIES} metric series, the most it can`);
      }
      names.set(name, id);
    }
    return id;
  }

  /** The batch's points grouped by series, in arrival order within each. */
  #groupBySeries(points: Columns, missing: Set<number>): Map<number, number[]> {
    const groups = new Map<number, number[]>();
    let lastExperiment = -1;
    let lastName = '';
    let group: number[] | undefined = [];
    for (let i = 0; i < points.length; i++) {
      const experimentId = points.experimentIds[i] as number;
      const name = points.names[i] as string;
      if (experimentId !== lastExperiment || name !== lastName) {
        const id = this.#seriesId(experimentId, name);
        if (id === undefined) {
          missing.add(experimentId);
          group = undefined;
        } else {
          group = groups.get(id) ?? [];
          groups.set(id, group);
        }
        lastExperiment = experimentId;
        lastName = name;
      }
      group?.push(i);
    }
    return groups;
  }

  /**
   * Inside one transaction: rows series by series, each appended at the
   * end of its series' range of the table, then each series' summary.
   */
  #writeBatch(points: Columns): Set<number> {
    const width = 4 * ROWS_PER_INSERT;
    const params: Array<number | null> = new Array(width);
    let filled = 0;
    const missing = new Set<number>();
    for (const [id, indexes] of this.#groupBySeries(points, missing)) {
      const position = this.#statements.position.get(id) as { count: number; last_step: number | null };
      if (position.count + indexes.length >= SERIES_SPAN) {
        throw new TrackerError(`metric series ${id} holds ${position.count} points, the most it can`);
      }
      let lastStep = position.last_step;
      let pointId = id * SERIES_SPAN + position.count;
      const s: SeriesStats = { count: 0, min: null, max: null, lastStep, lastValue: null, advanced: false };
      for (const i of indexes) {
        const given = points.steps[i] as number;
        const step = Number.isNaN(given) ? (lastStep === null ? 0 : lastStep + 1) : given;
        const raw = points.values[i] as number;
        const value = Number.isNaN(raw) ? null : raw;
        params[filled++] = pointId++;
        params[filled++] = step;
        params[filled++] = value;
        params[filled++] = points.timestamps[i] as number;
        if (filled === width) {
          this.#statements.insertMany.run(params);
          filled = 0;
        }
        s.count++;
        if (value !== null) {
          if (s.min === null || value < s.min) s.min = value;
          if (s.max === null || value > s.max) s.max = value;
        }
        if (lastStep === null || step >= lastStep) {
          lastStep = step;
          s.lastValue = value;
          s.advanced = true;
        }
      }
      s.lastStep = lastStep;
      this.#statements.summary.run({
        id,
        count: s.count,
        min: s.min,
        max: s.max,
        lastStep: s.advanced ? s.lastStep : null, // null: the stored last point stays last
        lastValue: s.lastValue,
      });
    }
    for (let k = 0; k < filled; k += 4) this.#statements.insertOne.run(params.slice(k, k + 4));
    return missing;
  }
}
