/**
 * @ckpt/tracker-sql: the engine behind @ckpt/tracker-postgres and
 * @ckpt/tracker-mysql. A driver supplies connections and the few SQL
 * differences; the engine supplies batching with idempotent keys, retries,
 * migrations and every query of core's TrackingDatabase contract.
 */
export type { BatchOptions } from './batches.js';
export { classifyError, type ErrorCodes } from './classify.js';
export { connectServer, type ServerTracker } from './connect.js';
export { SqlTracking, type SqlTrackingOptions } from './database.js';
export type { ColumnBatch, Dialect, SqlDriver, SqlSession, SqlValue } from './driver.js';
export { type Migration, migrate, schemaVersion } from './migrate.js';
export { type RetryOptions, withRetries } from './retry.js';
export { MAX_NAME } from './rows.js';
