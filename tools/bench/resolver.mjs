#!/usr/bin/env node
// @ckpt/resolver-b2: resolving a 1 GiB object from a local S3-compatible server (moto)
// into an empty cache, against a single-stream `curl` of the same object (a presigned URL).
// ckpt's default streams: one, split in four when it turns out slower than 200 MB/s.
//
//   node tools/bench/resolver.mjs [--size-mib 1024] [--runs 3] [--dir /tmp/ckpt-bench]
//
// ckpt's download is verified (SHA-256 against the object's metadata) and, by default,
// flushed to disk; curl does neither, so both are timed from clean writeback and ckpt is
// also shown without the flush. Target (issue 7): ckpt >= 1x curl.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Resolver } from '@ckpt/resolver-b2';
import {
  formatSeconds,
  MiB,
  machine,
  median,
  printTargets,
  python,
  startS3Server,
  table,
  timeIt,
  verdict,
} from './lib.mjs';

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: '/tmp/ckpt-bench' },
    // A faster server than moto: `cargo install s3s-fs@0.14.1 --features binary`, then its path here.
    's3s-fs': { type: 'string' },
  },
});
const size = Number(args['size-mib']) * MiB;
const runs = Number(args.runs);
const root = join(args.dir, `resolver-${process.pid}`);
mkdirSync(root, { recursive: true });
const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench-secret' };

const { endpoint, name: serverName, stop } = await startS3Server(root, credentials, args['s3s-fs']);
try {
  console.log(`# resolver (${machine()}, ${serverName} on 127.0.0.1, median of ${runs} runs)`);
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
  await client.send(new CreateBucketCommand({ Bucket: 'bench' }));

  const source = join(root, 'model.bin');
  const fd = openSync(source, 'w');
  const block = Buffer.allocUnsafe(64 * MiB);
  for (let done = 0; done < size; done += block.length)
    writeSync(fd, randomFillSync(block), 0, Math.min(block.length, size - done));
  closeSync(fd);
  const options = {
    bucket: { enabled: true, name: 'bench', prefix: '', endpoint, forcePathStyle: true },
    credentials,
  };
  const uploaded = await new Resolver({ ...options, cacheDir: join(root, 'up') }).upload(source, 'model.bin');
  rmSync(source);

  const url = spawnSync(
    python,
    [
      '-c',
      `import boto3; print(boto3.client('s3', endpoint_url='${endpoint}', aws_access_key_id='bench', aws_secret_access_key='bench-secret', region_name='us-east-1').generate_presigned_url('get_object', Params={'Bucket': 'bench', 'Key': 'model.bin'}, ExpiresIn=3600))`,
    ],
    { encoding: 'utf8' },
  ).stdout.trim();

  let n = 0;
  const fresh = () => join(root, `cache-${n++}`);
  const ckpt =
    (fsync, concurrency, native = true) =>
    async () => {
      execFileSync('sync');
      const resolver = new Resolver({
        ...options,
        cacheDir: fresh(),
        fsync,
        native,
        ...(concurrency ? { concurrency } : {}),
      });
      const before = process.cpuUsage(); // every thread of this process: receiving, writing, hashing
      const path = await resolver.resolve('model.bin');
      const used = process.cpuUsage(before);
      resolver.destroy();
      rmSync(path);
      return (used.user + used.system) / 1e6;
    };
  const curl = (flush) => async () => {
    execFileSync('sync');
    const out = join(root, `curl-${n++}.bin`);
    // GNU time reports curl's own CPU (user + system seconds) on stderr.
    const timed = spawnSync('/usr/bin/time', ['-f', '%U %S', 'curl', '-s', '-f', '-o', out, url], { encoding: 'utf8' });
    if (timed.status !== 0) throw new Error(`curl failed: ${timed.stderr}`);
    const cpu = timed.stderr.trim().split(/\s+/).slice(-2).map(Number);
    if (flush) execFileSync('sync', [out]); // fsync(2) of the file, as ckpt does before its rename
    rmSync(out);
    return (cpu[0] ?? 0) + (cpu[1] ?? 0);
  };
  const contenders = {
    curl: curl(false),
    curlFlushed: curl(true),
    byDefault: ckpt(false),
    byDefaultFlushed: ckpt(true),
    fourStreamsFlushed: ckpt(true, 4),
    sdkStream: ckpt(true, undefined, false),
  };
  const times = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  const cpus = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  const serverCpus = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  // The server's CPU, from /proc (Linux): to see which side limits the transfer.
  const serverCpu = () => {
    try {
      const fields = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return Number.NaN;
    }
  };
  // Each run starts with a different contender: what ran before (a flush, a deletion) affects the disk.
  const names = Object.keys(contenders);
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(i + k) % names.length];
      const server0 = serverCpu();
      let cpu = 0;
      times[name].push(
        await timeIt(async () => {
          cpu = await contenders[name]();
        }, 1),
      );
      cpus[name].push(cpu);
      serverCpus[name].push(serverCpu() - server0);
    }
  }
  const rate = (s) => `${(size / s / 1e6).toFixed(0)} MB/s`;
  const cpuOf = (name) => `${median(cpus[name]).toFixed(2)} s / ${median(serverCpus[name]).toFixed(2)} s`;
  const row = (label, name, reference) => {
    const s = median(times[name]);
    if (!reference) return [label, formatSeconds(s), rate(s), '1x', '', cpuOf(name)];
    const ratio = median(times[reference]) / s;
    return [label, formatSeconds(s), rate(s), `${ratio.toFixed(2)}x`, verdict(ratio >= 1), cpuOf(name)];
  };
  const rows = [
    row('curl, one stream (no verification, no flush)', 'curl'),
    row('ckpt resolve (default streams), SHA-256 verified, no flush', 'byDefault', 'curl'),
    row('curl, then fsync of the file', 'curlFlushed'),
    row('ckpt resolve (default streams), SHA-256 verified, flushed (the default)', 'byDefaultFlushed', 'curlFlushed'),
    row('ckpt resolve, 4 ranged streams from the start, verified, flushed', 'fourStreamsFlushed', 'curlFlushed'),
    row('ckpt resolve through the SDK stream (no addon), default streams, flushed', 'sdkStream', 'curlFlushed'),
  ];
  table(
    `download a ${args['size-mib']} MiB object (sha256 ${uploaded.sha256.slice(0, 12)}...)`,
    ['client', 'time', 'rate', 'speed vs the curl above', '>= 1x', 'CPU: client / server'],
    rows,
  );
  const versus = (name, reference) => median(times[reference]) / median(times[name]);
  const flushedVsCurl = versus('byDefaultFlushed', 'curl');
  const flushedVsFlushedCurl = versus('byDefaultFlushed', 'curlFlushed');
  printTargets([
    [
      'resolve 1 GiB, verified and flushed (the default), >= 1x curl with its fsync',
      `${flushedVsFlushedCurl.toFixed(2)}x`,
      flushedVsFlushedCurl >= 1,
    ],
    [
      'resolve 1 GiB, verified and flushed (the default), >= 1x a bare curl (no verification, no flush)',
      `${flushedVsCurl.toFixed(2)}x`,
      flushedVsCurl >= 1,
    ],
  ]);
} finally {
  stop();
  rmSync(root, { recursive: true, force: true });
}
