/**
 * @ckpt/resolver-b2: checkpoint names to local files, through a verified
 * cache and Backblaze B2 or any S3-compatible bucket; uploads that skip what
 * the bucket already holds.
 */

// NetworkError is core's (one error registry); re-exported here, where it used to live.
export { NetworkError } from '@ckpt/core';
export {
  type BackgroundSave,
  BucketCheckpoints,
  type BucketCheckpointsOptions,
  type BucketRecord,
  type BucketRecoveryReport,
  type BucketSaveInput,
} from './bucket/checkpoints.js';
export { Cache, type CacheEntry, type CacheRecord, type VerifyEntry } from './cache.js';
export { makeClient, regionOf } from './client.js';
export {
  type BucketConfig,
  type ConfigInput,
  type Credentials,
  configFromEnv,
  loadCredentials,
  type PartialConfig,
  type ResolverConfig,
  readConfigFile,
  resolveConfig,
  resolverConfig,
} from './config.js';
export { parseUri, type ResolveOptions, Resolver, type ResolverOptions } from './resolver.js';
export { downloadObject, headObject, type ObjectInfo, type TransferOptions } from './transfer.js';
export { type UploadOptions, type UploadResult, uploadFile } from './upload.js';
