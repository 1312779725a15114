#!/usr/bin/env node
// SHA-256 throughput: @ckpt/native against the usual tools, on files in the page cache.
//
//   node tools/bench/hash.mjs [--runs 3] [--dir /tmp/ckpt-bench]
//
// Prints one table for a 2 GiB file and one for 4 files of 512 MiB, with each
// tool's GB/s and its ratio to native, then the targets of issue #2 with the
// measured values. Every rate is the median of --runs runs.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { backend, sha256File, sha256Files } from '@ckpt/native';
import { printTargets } from './lib.mjs';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, dir: { type: 'string', default: '/tmp/ckpt-bench' } },
});
const runs = Number(args.runs);
const MiB = 2 ** 20;
const GiB = 2 ** 30;

if (backend.kind !== 'native') {
  console.error(`the native binding is not in use (${backend.reason}); build it with npm run build`);
  process.exit(1);
}

/** Makes (once) a file of random bytes and reads it through so it sits in the page cache. */
function prepare(name, size) {
  mkdirSync(args.dir, { recursive: true });
  const path = join(args.dir, name);
  if (!existsSync(path) || statSync(path).size !== size) {
    const fd = openSync(path, 'w');
    const block = Buffer.allocUnsafe(64 * MiB);
    for (let done = 0; done < size; done += block.length) {
      randomFillSync(block);
      writeSync(fd, block, 0, Math.min(block.length, size - done));
    }
    closeSync(fd);
  }
  const fd = openSync(path, 'r');
  const block = Buffer.allocUnsafe(16 * MiB);
  while (readSync(fd, block) > 0);
  closeSync(fd);
  return path;
}

function have(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

async function timed(fn) {
  const start = process.hrtime.bigint();
  const digests = await fn();
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, digests };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const nodeStream = (path) =>
  new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: MiB })
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });

const pythonScript = `
import hashlib, sys, time
start = time.perf_counter()
digests = []
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        digests.append(hashlib.file_digest(f, 'sha256').hexdigest())
print(time.perf_counter() - start)
print('\\n'.join(digests))
`;

const lines = (text) => text.trim().split('\n');
const firstField = (line) => line.split(' ')[0];

async function oneAfterAnother(paths, hash) {
  const digests = [];
  for (const p of paths) digests.push(await hash(p));
  return digests;
}

/**
 * Each contender hashes all `paths` and returns their digests. Native comes
 * first: it is what the ratios are taken against. Python times itself so its
 * start-up is left out.
 */
function contenders(paths) {
  const list =
    paths.length === 1
      ? [['ckpt native sha256File', () => timed(() => sha256File(paths[0]).then((d) => [d]))]]
      : [
          ['ckpt native sha256Files', () => timed(() => sha256Files(paths))],
          ['ckpt native sha256File, one after another', () => timed(() => oneAfterAnother(paths, sha256File))],
        ];
  list.push(['node:crypto over a read stream', () => timed(() => oneAfterAnother(paths, nodeStream))]);
  if (have('openssl')) {
    const dgst = () => execFileSync('openssl', ['dgst', '-sha256', '-r', ...paths], { encoding: 'utf8' });
    list.push(['openssl dgst -sha256', () => timed(async () => lines(dgst()).map(firstField))]);
  }
  if (have('sha256sum')) {
    const sum = () => execFileSync('sha256sum', paths, { encoding: 'utf8' });
    list.push(['coreutils sha256sum', () => timed(async () => lines(sum()).map(firstField))]);
  }
  if (have('python3')) {
    list.push([
      'Python hashlib.file_digest',
      async () => {
        const out = lines(execFileSync('python3', ['-c', pythonScript, ...paths], { encoding: 'utf8' }));
        return { seconds: Number(out[0]), digests: out.slice(1) };
      },
    ]);
  }
  return list;
}

async function scenario(title, paths) {
  const bytes = paths.reduce((sum, p) => sum + statSync(p).size, 0);
  const rows = [];
  let reference;
  for (const [name, run] of contenders(paths)) {
    const seconds = [];
    for (let i = 0; i < runs; i++) {
      const result = await run();
      seconds.push(result.seconds);
      reference ??= result.digests;
      if (result.digests.join() !== reference.join()) throw new Error(`${name} disagrees on the digests`);
    }
    rows.push({ name, gbps: bytes / median(seconds) / 1e9 });
  }
  const native = rows[0].gbps;
  console.log(`\n### ${title}\n`);
  console.log('| contender | GB/s | ratio to native |');
  console.log('|---|---:|---:|');
  for (const row of rows) console.log(`| ${row.name} | ${row.gbps.toFixed(2)} | ${(row.gbps / native).toFixed(2)}x |`);
  return rows;
}

function opensslSpeed() {
  if (!have('openssl')) return undefined;
  const out = execFileSync('openssl', ['speed', '-evp', 'sha256', '-bytes', String(MiB), '-seconds', '3'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const line = out.split('\n').find((l) => /^sha256\s/i.test(l.trim()));
  const kilobytes = Number(line?.trim().split(/\s+/).at(-1)?.replace(/k$/, ''));
  return Number.isFinite(kilobytes) ? (kilobytes * 1000) / 1e9 : undefined;
}

console.log(
  `# SHA-256 throughput (${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, ${runs} runs, median)`,
);
const limit = opensslSpeed();
if (limit)
  console.log(`\nSingle-core limit, \`openssl speed -evp sha256\` on 1 MiB blocks: **${limit.toFixed(2)} GB/s**`);

const big = prepare('one-2GiB.bin', 2 * GiB);
const one = await scenario('One 2 GiB file in the page cache', [big]);
const parts = [1, 2, 3, 4].map((i) => prepare(`part-${i}-512MiB.bin`, 512 * MiB));
const four = await scenario('Four 512 MiB files in the page cache', parts);

const oneRate = one[0].gbps;
const nodeRate = one.find((r) => r.name.startsWith('node:crypto')).gbps;
const fourRate = four[0].gbps;
const targetRows = [];
if (limit)
  targetRows.push([
    `one file >= 0.95x the single-core limit`,
    `${(oneRate / limit).toFixed(2)}x`,
    oneRate / limit >= 0.95,
  ]);
targetRows.push([`one file >= 1.4x node:crypto`, `${(oneRate / nodeRate).toFixed(2)}x`, oneRate / nodeRate >= 1.4]);
targetRows.push([
  `4 files >= 1.8x the one-file rate`,
  `${(fourRate / oneRate).toFixed(2)}x`,
  fourRate / oneRate >= 1.8,
]);
printTargets(targetRows);
