/**
 * The SQLite store behind core's async `TrackingDatabase` contract, so the
 * CLI, the UI, `ckpt db copy` and `TrackedRun` take SQLite, PostgreSQL and
 * MySQL alike. Each call runs the synchronous store directly: logging a point
 * is the same call as `TrackingStore.logMetric`, so nothing gets slower.
 */
import {
  type BestCheckpointsQuery,
  type CheckpointRecord,
  type ConnectTracking,
  DatabaseError,
  type Experiment,
  type ExperimentExport,
  type ExperimentInput,
  type ExperimentPage,
  type ExperimentQuery,
  type ExperimentStatus,
  type MetricBucket,
  type MetricPointRow,
  type MetricSummary,
  parseDatabaseLocation,
  type Statistics,
  type StepRange,
  type TrackedCheckpoint,
  type TrackingDatabase,
} from '@ckpt/core';
import { TrackingStore, type TrackingStoreOptions } from './store.js';

export class SqliteTracking implements TrackingDatabase {
  readonly kind = 'sqlite';
  readonly store: TrackingStore;

  constructor(store: TrackingStore) {
    this.store = store;
  }

  get location(): string {
    return this.store.path;
  }
  get upgradedFrom(): number {
    return this.store.upgradedFrom;
  }
  get closed(): boolean {
    return this.store.closed;
  }
  get buffered(): number {
    return this.store.buffered;
  }

  async startExperiment(input: ExperimentInput): Promise<Experiment> {
    return this.store.startExperiment(input);
  }
  async endExperiment(id: number, status?: ExperimentStatus): Promise<Experiment> {
    return this.store.endExperiment(id, status);
  }
  async setTags(id: number, tags: readonly string[], options?: { replace?: boolean }): Promise<Experiment> {
    return this.store.setTags(id, tags, options);
  }
  async logParams(id: number, params: Record<string, unknown>): Promise<void> {
    this.store.logParams(id, params);
  }
  logMetric(id: number, name: string, value: number, step?: number, timestamp?: number | Date): undefined {
    this.store.logMetric(id, name, value, step, timestamp);
    return undefined;
  }
  async flush(): Promise<void> {
    this.store.flush();
  }
  async recordCheckpoint(id: number, record: CheckpointRecord): Promise<void> {
    this.store.recordCheckpoint(id, record);
  }
  async removeCheckpoint(id: number, checkpointId: string): Promise<void> {
    this.store.removeCheckpoint(id, checkpointId);
  }
  async importExperiment(data: ExperimentExport): Promise<Experiment> {
    return this.store.importExperiment(data);
  }
  async getExperiment(idOrName: number | string, project?: string): Promise<Experiment> {
    return this.store.getExperiment(idOrName, project);
  }
  async params(id: number): Promise<Record<string, unknown>> {
    return this.store.params(id);
  }
  async experiments(query?: ExperimentQuery): Promise<ExperimentPage> {
    return this.store.experiments(query);
  }
  async metricHistory(id: number, name: string, range?: StepRange): Promise<MetricPointRow[]> {
    return this.store.metricHistory(id, name, range);
  }
  async metricBuckets(id: number, name: string, buckets: number, range?: StepRange): Promise<MetricBucket[]> {
    return this.store.metricBuckets(id, name, buckets, range);
  }
  async metrics(id: number): Promise<MetricSummary[]> {
    return this.store.metrics(id);
  }
  async checkpoints(id: number, options?: { includeDeleted?: boolean }): Promise<TrackedCheckpoint[]> {
    return this.store.checkpoints(id, options);
  }
  async bestCheckpoints(query: BestCheckpointsQuery): Promise<TrackedCheckpoint[]> {
    return this.store.bestCheckpoints(query);
  }
  async statistics(options?: { project?: string }): Promise<Statistics> {
    return this.store.statistics(options);
  }
  async exportExperiment(id: number): Promise<ExperimentExport> {
    return this.store.exportExperiment(id);
  }
  async export(id: number, format: 'json' | 'csv' = 'json'): Promise<string> {
    return this.store.export(id, format);
  }
  async close(): Promise<void> {
    this.store.close();
  }
}

/** Opens the SQLite database a path or `sqlite://` URL names (created unless `readonly`). */
export const connect: ConnectTracking<TrackingStoreOptions> = async (url, options = {}) => {
  const location = parseDatabaseLocation(url);
  if (location.kind !== 'sqlite') {
    throw new DatabaseError(`@ckpt/tracker-sqlite opens SQLite files, not ${location.display}`, {
      code: 'CKPT_DATABASE_URL',
    });
  }
  return new SqliteTracking(TrackingStore.open(location.target, options));
};
