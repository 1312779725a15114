/** The tracking contract: data types, the database interface, URLs, and helpers every tracker shares. */
export type { ConnectTracking, TrackingDatabase } from './database.js';
export { type OpenTrackingOptions, openTrackingDatabase } from './open.js';
export { currentGitCommit, currentHost } from './origin.js';
export { TrackedRun, type TrackedRunOptions } from './run.js';
export { addToSummary, emptySummary, type SeriesSummary } from './summary.js';
export {
  checkName,
  checkPage,
  checkPoint,
  checkStatus,
  configPathParts,
  exportText,
  metricsFromJson,
  toCsvText,
  toJson,
  toJsonText,
} from './text.js';
export * from './types.js';
export {
  type DatabaseKind,
  type DatabaseLocation,
  isDatabaseUrl,
  maskCredentials,
  parseDatabaseLocation,
} from './url.js';
