// A training process saving straight to a bucket, to be killed mid-upload:
//   node bucket-child.mjs <endpoint> <location> <experiment> <cacheDir> <megabytes>
// Prints "part" after each part it sends; the test kills it after the first.
import { S3Client } from '@aws-sdk/client-s3';
import { fromTypedArray } from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';
import { BucketCheckpoints } from '../../dist/index.js';

const [endpoint, location, experiment, cacheDir, megabytes] = process.argv.slice(2);
const client = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'ckpt-test', secretAccessKey: 'ckpt-test-secret' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  maxAttempts: 1,
});
const checkpoints = await BucketCheckpoints.open({
  location,
  experiment,
  storage: safetensors,
  client,
  cacheDir,
  partSize: 5 << 20,
  concurrency: 1,
  onProgress: () => process.stdout.write('part\n'),
});
const state = { w: fromTypedArray(new Float32Array((Number(megabytes) << 20) / 4).fill(1)) };
await checkpoints.save({ state, step: 1 });
process.stdout.write('saved\n');
