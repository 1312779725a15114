#!/usr/bin/env node
// Saving a 1 GiB checkpoint straight to a bucket (issue #18): ckpt's BucketCheckpoints.save (encoded in
// memory, multipart, hashed as it goes, committed to the index with conditional writes) against boto3's
// managed upload (upload_fileobj) of the same bytes from memory, same part size and concurrency, to the
// same local S3 server. Turns alternate; boto3 neither hashes nor commits anything.
//
//   node tools/bench/bucket.mjs [--size-mib 1024] [--runs 3] [--dir /tmp/ckpt-bench] [--s3s-fs path]
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { tensor } from '@ckpt/core';
import { BucketCheckpoints } from '@ckpt/resolver-b2';
import { safetensors } from '@ckpt/storage-safetensors';
import { formatSeconds, MiB, machine, median, printTargets, python, startS3Server, table } from './lib.mjs';

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: '/tmp/ckpt-bench' },
    's3s-fs': { type: 'string' },
  },
});
const size = Number(args['size-mib']) * MiB;
const runs = Number(args.runs);
const PART = 16 * MiB;
const CONCURRENCY = 8;
const root = join(args.dir, `bucket-${process.pid}`);
mkdirSync(root, { recursive: true });
const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench-secret' };
const { endpoint, name, stop } = await startS3Server(root, credentials, args['s3s-fs']);
try {
  console.log(`# bucket saves (${machine()}, ${name} on 127.0.0.1, median of ${runs} runs)`);
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
  await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
  const state = {};
  for (let i = 0; i < 16; i++)
    state[`layers.${i}.weight`] = tensor('U8', [size / 16], new Uint8Array(size / 16).fill(i));
  const checkpoints = await BucketCheckpoints.open({
    location: 's3://bench/runs',
    experiment: 'bench',
    storage: safetensors,
    client,
    cacheDir: join(root, 'cache'),
    partSize: PART,
    concurrency: CONCURRENCY,
  });
  const boto = `
import io, sys, time, boto3
from boto3.s3.transfer import TransferConfig
size, part, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s3 = boto3.client('s3', endpoint_url='${endpoint}', aws_access_key_id='bench', aws_secret_access_key='bench-secret', region_name='us-east-1')
data = bytes(size)
t = time.perf_counter()
s3.upload_fileobj(io.BytesIO(data), 'bench', 'boto/model.bin', Config=TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=threads))
print(time.perf_counter() - t)
s3.delete_object(Bucket='bench', Key='boto/model.bin')
`;
  const ckptTimes = [];
  const botoTimes = [];
  for (let i = 0; i <= runs; i++) {
    const start = performance.now();
    const record = await checkpoints.save({ state, step: i });
    const ckptSeconds = (performance.now() - start) / 1000;
    await checkpoints.delete(record.id);
    const run = spawnSync(python, ['-c', boto, String(size), String(PART), String(CONCURRENCY)], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`boto3 failed: ${run.stderr}`);
    if (i > 0) {
      // the first turn is a warm-up
      ckptTimes.push(ckptSeconds);
      botoTimes.push(Number(run.stdout.trim()));
    }
  }
  const ratio = median(botoTimes) / median(ckptTimes);
  table(
    `Save ${args['size-mib']} MiB to the bucket, ${PART / MiB} MiB parts, ${CONCURRENCY} in flight`,
    ['contender', 'time', 'ckpt is faster by'],
    [
      ['ckpt BucketCheckpoints.save (encode, SHA-256, multipart, index commit)', formatSeconds(median(ckptTimes)), ''],
      [
        'boto3 upload_fileobj from memory (no digest, no commit)',
        formatSeconds(median(botoTimes)),
        `${ratio.toFixed(2)}x`,
      ],
    ],
  );
  printTargets([
    [`bucket save of ${args['size-mib']} MiB >= 1x boto3's managed upload`, `${ratio.toFixed(2)}x`, ratio >= 1],
  ]);
} finally {
  stop();
  rmSync(root, { recursive: true, force: true });
}
