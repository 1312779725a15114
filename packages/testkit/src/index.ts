/**
 * @ckpt/testkit: conformance suites that ckpt's own plugins and third-party
 * plugins run to prove they honour ckpt's contracts.
 */
export { describeStorageBackend, type StorageSuiteOptions } from './storage-suite.js';
