/**
 * Metric points wait in a bounded buffer and are written in one transaction
 * per batch: when the buffer is full, on a timer, on `flush()`, on close and
 * at process exit. A failed write keeps the points for the next attempt.
 */
import { CkptError } from '@ckpt/core';
import type Database from 'better-sqlite3';

export interface MetricPoint {
  experimentId: number;
  name: string;
  /** Undefined: one past the series' last step, decided when written. */
  step: number | undefined;
  value: number;
  timestamp: number;
}

export interface BufferOptions {
  maxBuffered: number;
  flushIntervalMs: number;
}

/** Rows per INSERT statement: fewer calls into SQLite per point. */
const ROWS_PER_INSERT = 64;

interface SeriesStats {
  count: number;
  min: number | null;
  max: number | null;
  lastStep: number | null;
  lastValue: number | null;
  /** Whether this batch reached or passed the stored last step. */
  advanced: boolean;
}

export class MetricBuffer {
  #points: MetricPoint[] = [];
  readonly #seriesIds = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  readonly #write: (points: MetricPoint[]) => void;
  readonly #statements;

  constructor(
    db: Database.Database,
    private readonly options: BufferOptions,
  ) {
    const values = (n: number) => Array.from({ length: n }, () => '(?, ?, ?, ?)').join(', ');
    this.#statements = {
      insertSeries: db.prepare('INSERT OR IGNORE INTO metric_series (experiment_id, name) VALUES (?, ?)'),
      series: db.prepare('SELECT id FROM metric_series WHERE experiment_id = ? AND name = ?'),
      lastStep: db.prepare('SELECT last_step FROM metric_series WHERE id = ?'),
      insertMany: db.prepare(
        `INSERT INTO metric_points (series_id, step, value, timestamp) VALUES ${values(ROWS_PER_INSERT)}`,
      ),
      insertOne: db.prepare('INSERT INTO metric_points (series_id, step, value, timestamp) VALUES (?, ?, ?, ?)'),
      summary: db.prepare(`UPDATE metric_series SET
          count = count + @count,
          min_value = coalesce(min(min_value, @min), min_value, @min),
          max_value = coalesce(max(max_value, @max), max_value, @max),
          last_value = CASE WHEN last_step IS NULL OR @lastStep >= last_step THEN @lastValue ELSE last_value END,
          last_step = CASE WHEN last_step IS NULL OR @lastStep >= last_step THEN @lastStep ELSE last_step END
        WHERE id = @id`),
      experimentExists: db.prepare('SELECT 1 FROM experiments WHERE id = ?'),
    };
    const transaction = db.transaction((points: MetricPoint[]) => this.#writeBatch(points));
    this.#write = (points) => transaction.immediate(points);
  }

  get size(): number {
    return this.#points.length;
  }

  push(point: MetricPoint): void {
    this.#points.push(point);
    if (this.#points.length >= this.options.maxBuffered) this.flush();
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
    this.#points = [];
    try {
      this.#write(points);
    } catch (error) {
      this.#points = points.concat(this.#points); // nothing is lost; retried next time
      if (this.#points.length > this.options.maxBuffered * 10) {
        throw new CkptError('CKPT_TRACKER_BACKLOG', `${this.#points.length} metric points could not be written`, {
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

  #seriesId(experimentId: number, name: string): number {
    const key = `${experimentId}\u0000${name}`;
    let id = this.#seriesIds.get(key);
    if (id === undefined) {
      if (!this.#statements.experimentExists.get(experimentId)) {
        throw new CkptError('CKPT_NOT_FOUND', `no experiment with id ${experimentId} to log ${name} into`);
      }
      this.#statements.insertSeries.run(experimentId, name);
      id = (this.#statements.series.get(experimentId, name) as { id: number }).id;
      this.#seriesIds.set(key, id);
    }
    return id;
  }

  /** Inside one transaction: steps, rows, then each series' summary. */
  #writeBatch(points: MetricPoint[]): void {
    const stats = new Map<number, SeriesStats>();
    const rows: Array<number | null> = [];
    for (const point of points) {
      const id = this.#seriesId(point.experimentId, point.name);
      let s = stats.get(id);
      if (!s) {
        const last = (this.#statements.lastStep.get(id) as { last_step: number | null }).last_step;
        s = { count: 0, min: null, max: null, lastStep: last, lastValue: null, advanced: false };
        stats.set(id, s);
      }
      const step = point.step ?? (s.lastStep === null ? 0 : s.lastStep + 1);
      const value = Number.isNaN(point.value) ? null : point.value;
      rows.push(id, step, value, point.timestamp);
      s.count++;
      if (value !== null) {
        s.min = s.min === null ? value : Math.min(s.min, value);
        s.max = s.max === null ? value : Math.max(s.max, value);
      }
      if (s.lastStep === null || step >= s.lastStep) {
        s.lastStep = step;
        s.lastValue = value;
        s.advanced = true;
      }
    }
    const width = 4 * ROWS_PER_INSERT;
    let i = 0;
    for (; i + width <= rows.length; i += width) this.#statements.insertMany.run(rows.slice(i, i + width));
    for (; i < rows.length; i += 4) this.#statements.insertOne.run(rows.slice(i, i + 4));
    for (const [id, s] of stats) {
      if (s.count === 0) continue;
      this.#statements.summary.run({
        id,
        count: s.count,
        min: s.min,
        max: s.max,
        lastStep: s.advanced ? s.lastStep : null, // null: the stored last point stays last
        lastValue: s.lastValue,
      });
    }
  }
}
