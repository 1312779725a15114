/**
 * @ckpt/tracker-sqlite: experiments, metrics, parameters and checkpoint
 * records in one SQLite file (better-sqlite3), with versioned migrations,
 * batched writes that several processes can share, and queries.
 */
export type { BufferOptions } from './buffer.js';
export { type DatabaseOptions, openDatabase } from './database.js';
export { ExperimentTracker, type ExperimentTrackerOptions } from './experiment.js';
export type { ExperimentExport } from './export.js';
export type {
  ExperimentPage,
  ExperimentQuery,
  MetricBucket,
  MetricPointRow,
  MetricSummary,
  Statistics,
  TrackedCheckpoint,
} from './queries.js';
export { type Experiment, type ExperimentStatus, STATUSES } from './rows.js';
export { MIGRATIONS, migrate, SCHEMA_VERSION } from './schema.js';
export { ClosedError, type ExperimentInput, TrackingStore, type TrackingStoreOptions } from './store.js';
