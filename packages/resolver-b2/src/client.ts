/** An S3 client configured so that Backblaze B2 (and any S3-compatible store) accepts its requests. */
import { S3Client } from '@aws-sdk/client-s3';
import type { BucketConfig, Credentials } from './config.js';

/** `s3.us-west-004.backblazeb2.com` -> `us-west-004`. */
export function regionOf(bucket: BucketConfig): string {
  if (bucket.region) return bucket.region;
  const match = bucket.endpoint ? /s3\.([a-z0-9-]+)\.backblazeb2\.com/.exec(bucket.endpoint) : null;
  return match?.[1] ?? 'us-east-1';
}

export function makeClient(bucket: BucketConfig, credentials: Credentials | undefined): S3Client {
  return new S3Client({
    region: regionOf(bucket),
    ...(bucket.endpoint ? { endpoint: bucket.endpoint } : {}),
    forcePathStyle: bucket.forcePathStyle ?? false,
    ...(credentials ? { credentials } : {}),
    // B2 rejects the x-amz-checksum-* headers the SDK adds by default since 3.729:
    // send and check them only where an operation requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Retries are ours (with Range resumption), so the SDK makes one attempt.
    maxAttempts: 1,
  });
}
