/**
 * @ckpt/tracker-sqlite: experiments, metrics, parameters and checkpoint
 * records in one SQLite file (better-sqlite3), with versioned migrations,
 * batched writes that several processes can share, and queries.
 * `connect(path)` gives core's `TrackingDatabase`; `TrackingStore` is the
 * same database with synchronous calls.
 */
export type {
  Experiment,
  ExperimentExport,
  ExperimentInput,
  ExperimentPage,
  ExperimentQuery,
  ExperimentStatus,
  MetricBucket,
  MetricPointRow,
  MetricSummary,
  Statistics,
  TrackedCheckpoint,
} from '@ckpt/core';
export { ClosedError, STATUSES } from '@ckpt/core';
export type { BufferOptions } from './buffer.js';
export { type DatabaseOptions, openDatabase } from './database.js';
export { ExperimentTracker, type ExperimentTrackerOptions } from './experiment.js';
export { MIGRATIONS, migrate, SCHEMA_VERSION } from './schema.js';
export { TrackingStore, type TrackingStoreOptions } from './store.js';
export { connect, SqliteTracking } from './tracking.js';
