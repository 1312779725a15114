/**
 * @ckpt/testkit: conformance suites that ckpt's own plugins and third-party
 * plugins run to prove they honour ckpt's contracts. Private database servers
 * to run tracker suites against are in `@ckpt/testkit/servers`.
 */

export { describeTrackerServer, type ServerSuiteOptions, type TrackerServer } from './server-suite.js';
export { type SparseTensorFile, writeSparseSafetensors } from './sparse.js';
export { describeStorageBackend, type StorageSuiteOptions } from './storage-suite.js';
export { checkpointRecord, describeTracker, type TrackerSuiteOptions } from './tracker-suite.js';
