#!/usr/bin/env node
// The main job until @ckpt/cli lands: writes a generated 1 GiB "checkpoint"
// atomically while hashing it, hashes it again from the memory mapping, checks
// both digests agree, and reads a few zero-copy views, with progress bars.
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backend, mapFile, sha256File, writeFileAtomic } from '@ckpt/native';

const MiB = 2 ** 20;
const size = Number(process.env.CKPT_DEMO_MIB ?? 1024) * MiB;

function progressBar(label) {
  const started = process.hrtime.bigint();
  let last = -1;
  return ({ bytesDone, bytesTotal }) => {
    const fraction = bytesTotal === 0 ? 1 : bytesDone / bytesTotal;
    const percent = Math.floor(fraction * 100);
    if (percent === last) return;
    last = percent;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const rate = seconds > 0 ? bytesDone / seconds / 1e9 : 0;
    const filled = Math.round(fraction * 30);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(30 - filled)}`;
    const line = `${label.padEnd(8)} [${bar}] ${String(percent).padStart(3)}%  ${rate.toFixed(2)} GB/s`;
    process.stdout.write(process.stdout.isTTY ? `\r${line}` : percent === 100 ? `${line}\n` : '');
    if (percent === 100 && process.stdout.isTTY) process.stdout.write('\n');
  };
}

const dir = mkdtempSync(join(tmpdir(), 'ckpt-demo-'));
try {
  console.log(`ckpt demo: @ckpt/native (${backend.kind}${backend.reason ? `: ${backend.reason}` : ''})`);
  console.log(`Generating a ${size / MiB} MiB checkpoint of random weights in ${dir}`);
  const weights = Buffer.allocUnsafe(size);
  for (let at = 0; at < size; at += 64 * MiB) randomFillSync(weights, at, Math.min(64 * MiB, size - at));
  const header = Buffer.from(JSON.stringify({ model: 'demo', bytes: size }));

  const path = join(dir, 'model.bin');
  const written = await writeFileAtomic(path, [header, weights], { onProgress: progressBar('write') });
  const hashed = await sha256File(path, { onProgress: progressBar('verify') });
  if (hashed !== written.sha256) throw new Error(`digest mismatch: wrote ${written.sha256}, read ${hashed}`);

  const file = mapFile(path);
  const first = file.view(header.length, 8);
  const same = Buffer.from(first).equals(weights.subarray(0, 8));
  console.log(`\nsize     ${written.size} bytes`);
  console.log(`sha256   ${written.sha256} (computed while writing, confirmed by re-hashing)`);
  console.log(
    `mapping  ${file.zeroCopy ? 'zero-copy' : 'copied'} views; first weights ${Buffer.from(first).toString('hex')} ${same ? 'match' : 'DIFFER'}`,
  );
  file.close();
  if (!same) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
