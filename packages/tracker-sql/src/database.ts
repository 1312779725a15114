/**
 * core's TrackingDatabase over any SqlDriver: the class @ckpt/tracker-postgres
 * and @ckpt/tracker-mysql return from `connect`.
 */
import {
  type BestCheckpointsQuery,
  type CheckpointRecord,
  ClosedError,
  checkPoint,
  checkStatus,
  type Experiment,
  type ExperimentExport,
  type ExperimentInput,
  type ExperimentPage,
  type ExperimentQuery,
  type ExperimentStatus,
  exportText,
  type MetricBucket,
  type MetricPointRow,
  type MetricSummary,
  NotFoundError,
  type Statistics,
  type StepRange,
  type TrackedCheckpoint,
  type TrackingDatabase,
} from '@ckpt/core';
import { type BatchOptions, BatchWriter } from './batches.js';
import type { SqlDriver, SqlSession } from './driver.js';
import * as reads from './reads.js';
import { withRetries } from './retry.js';
import * as writes from './writes.js';

export type SqlTrackingOptions = BatchOptions;

export class SqlTracking implements TrackingDatabase {
  readonly driver: SqlDriver;
  readonly upgradedFrom: number;
  readonly #batches: BatchWriter;
  readonly #options: SqlTrackingOptions;
  // Queued points are sent when the event loop runs dry (a script that forgets close()): once,
  // so that a server that stays away cannot keep the process alive.
  readonly #beforeExit = () => {
    if (this.#closed || this.#batches.size === 0 || this.#exitFlushTried) return;
    this.#exitFlushTried = true;
    void this.#batches.flush().catch(() => undefined);
  };
  #exitFlushTried = false;
  #closed = false;

  constructor(driver: SqlDriver, upgradedFrom: number, options: SqlTrackingOptions = {}) {
    this.driver = driver;
    this.upgradedFrom = upgradedFrom;
    this.#options = options;
    this.#batches = new BatchWriter(driver, options);
    process.on('beforeExit', this.#beforeExit);
  }

  get kind(): string {
    return this.driver.kind;
  }
  get location(): string {
    return this.driver.location;
  }
  get closed(): boolean {
    return this.#closed;
  }
  get buffered(): number {
    return this.#batches.size;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError(`the tracking database ${this.location}`);
  }

  /** A write in one transaction, retried on a lost connection (every write here is safe to repeat). */
  async #write<T>(work: (s: SqlSession) => Promise<T>): Promise<T> {
    this.#assertOpen();
    return withRetries(this.driver, this.#options, () => this.driver.transaction(work));
  }

  async #read<T>(work: (s: SqlSession) => Promise<T>): Promise<T> {
    this.#assertOpen();
    return withRetries(this.driver, this.#options, () => this.driver.session(work));
  }

  async startExperiment(input: ExperimentInput): Promise<Experiment> {
    const id = await this.#write((s) => writes.startExperiment(this.driver, s, input));
    return this.getExperiment(id);
  }

  async endExperiment(id: number, status: ExperimentStatus = 'completed'): Promise<Experiment> {
    checkStatus(status);
    await this.flush();
    const changed = await this.#write((s) =>
      s.run('UPDATE experiments SET status = ?, ended_at = ? WHERE id = ?', [
        status,
        status === 'running' ? null : Date.now(),
        id,
      ]),
    );
    if (changed === 0) await this.getExperiment(id); // NotFoundError when missing
    return this.getExperiment(id);
  }

  async setTags(id: number, tags: readonly string[], options: { replace?: boolean } = {}): Promise<Experiment> {
    await this.getExperiment(id);
    await this.#write(async (s) => {
      if (options.replace) await s.run('DELETE FROM experiment_tags WHERE experiment_id = ?', [id]);
      await writes.addTags(this.driver, s, id, tags);
    });
    return this.getExperiment(id);
  }

  async logParams(id: number, params: Record<string, unknown>): Promise<void> {
    await this.getExperiment(id);
    await this.#write((s) => writes.logParams(this.driver, s, id, params));
  }

  logMetric(
    id: number,
    name: string,
    value: number,
    step?: number,
    timestamp?: number | Date,
  ): Promise<void> | undefined {
    this.#assertOpen();
    checkPoint(name, value, step);
    return this.#batches.push(
      id,
      name,
      step,
      value,
      timestamp instanceof Date ? timestamp.getTime() : (timestamp ?? Date.now()),
    );
  }

  async flush(): Promise<void> {
    if (this.#closed) return;
    await this.#batches.flush();
  }

  async recordCheckpoint(id: number, record: CheckpointRecord): Promise<void> {
    await this.#write((s) => writes.recordCheckpoint(this.driver, s, id, record));
  }

  async removeCheckpoint(id: number, checkpointId: string): Promise<void> {
    await this.#write((s) =>
      s.run(
        'UPDATE checkpoints SET deleted_at = ?, is_best = 0, is_latest = 0 WHERE experiment_id = ? AND checkpoint_id = ?',
        [Date.now(), id, checkpointId],
      ),
    );
  }

  async importExperiment(data: ExperimentExport): Promise<Experiment> {
    await this.flush();
    const id = await this.#write((s) => writes.importExperiment(this.driver, s, data));
    return this.getExperiment(id);
  }

  async getExperiment(idOrName: number | string, project = 'default'): Promise<Experiment> {
    const [found] = await this.#read((s) =>
      typeof idOrName === 'number'
        ? reads.experimentsWhere(s, 'e.id = ?', [idOrName])
        : reads.experimentsWhere(s, 'e.project = ? AND e.name = ?', [project, idOrName]),
    );
    if (!found) {
      throw new NotFoundError(
        typeof idOrName === 'number'
          ? `no experiment with id ${idOrName} in ${this.location}`
          : `no experiment ${JSON.stringify(idOrName)} in project ${JSON.stringify(project)} of ${this.location}`,
        { path: this.location },
      );
    }
    return found;
  }

  async params(id: number): Promise<Record<string, unknown>> {
    const rows = await this.#read((s) =>
      s.rows<{ name: string; value: unknown }>('SELECT name, value FROM params WHERE experiment_id = ? ORDER BY name', [
        id,
      ]),
    );
    const params: Record<string, unknown> = Object.create(null);
    for (const r of rows) params[r.name] = typeof r.value === 'string' ? JSON.parse(r.value) : r.value;
    return params;
  }

  experiments(query?: ExperimentQuery): Promise<ExperimentPage> {
    return this.#read((s) => reads.queryExperiments(this.driver, s, query));
  }

  async metricHistory(id: number, name: string, range?: StepRange): Promise<MetricPointRow[]> {
    await this.flush();
    return this.#read((s) => reads.metricHistory(this.driver, s, id, name, range));
  }

  async metricBuckets(id: number, name: string, buckets: number, range?: StepRange): Promise<MetricBucket[]> {
    await this.flush();
    return this.#read((s) => reads.metricBuckets(this.driver, s, id, name, buckets, range));
  }

  async metrics(id: number): Promise<MetricSummary[]> {
    await this.flush();
    return this.#read((s) => reads.metricSummaries(this.driver, s, id));
  }

  checkpoints(id: number, options?: { includeDeleted?: boolean }): Promise<TrackedCheckpoint[]> {
    return this.#read((s) => reads.listCheckpoints(this.driver, s, id, options));
  }

  bestCheckpoints(query: BestCheckpointsQuery): Promise<TrackedCheckpoint[]> {
    return this.#read((s) => reads.bestCheckpoints(this.driver, s, query));
  }

  async statistics(options?: { project?: string }): Promise<Statistics> {
    await this.flush();
    return this.#read((s) => reads.statistics(s, options));
  }

  async exportExperiment(id: number): Promise<ExperimentExport> {
    await this.flush();
    const experiment = await this.getExperiment(id);
    const params = await this.params(id);
    const metrics: ExperimentExport['metrics'] = {};
    for (const summary of await this.metrics(id)) {
      metrics[summary.name] = (await this.metricHistory(id, summary.name)).map((p) => ({
        step: p.step,
        value: p.value,
        timestamp: p.timestamp.toISOString(),
      }));
    }
    const checkpoints = await this.checkpoints(id, { includeDeleted: true });
    return { experiment, params, metrics, checkpoints };
  }

  async export(id: number, format: 'json' | 'csv' = 'json'): Promise<string> {
    return exportText(await this.exportExperiment(id), format);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#batches.flush();
    } finally {
      this.#batches.stop();
      this.#closed = true;
      process.removeListener('beforeExit', this.#beforeExit);
      await this.driver.close();
    }
  }
}
