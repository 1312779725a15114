#!/usr/bin/env node
// CheckpointManager overhead: manager.save against the raw backend write it wraps, in one run.
//
//   node tools/bench/manager.mjs [--runs 15] [--dir /tmp/ckpt-bench]
//
// Both sides write the same state with @ckpt/storage-safetensors to fresh file names in
// the same folder, alternating, from clean writeback (`sync` before each write).
// The manager adds: the policy decision, staging, the locked index commit (an atomic
// JSON write), the rename into place, retention and hooks (none configured here).
// Targets (issue 5): < 5% for 100 MB, < 2 ms for 10 KB, async save returns in < 5 ms for 100 MB.
// Also measured: what one file creation + rename costs on this file system, the floor of any
// atomic index update.
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CheckpointManager, tensor } from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';
import { formatSeconds, MiB, machine, median, table, target, verdict } from './lib.mjs';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '15' }, dir: { type: 'string', default: '/tmp/ckpt-bench' } },
});
const runs = Number(args.runs);
const root = join(args.dir, `manager-${process.pid}`);
mkdirSync(root, { recursive: true });

/** `count` F32 tensors of `bytesEach` bytes, with varied contents. */
function makeState(count, bytesEach) {
  const state = {};
  for (let i = 0; i < count; i++) {
    const bytes = new Uint8Array(bytesEach);
    for (let j = 0; j < bytesEach; j += 4096) bytes[j] = (i + j) & 0xff;
    state[`layers.${i}.weight`] = tensor('F32', [bytesEach / 4], bytes);
  }
  return state;
}

const now = () => process.hrtime.bigint();
const seconds = (start) => Number(now() - start) / 1e9;

async function compare(label, state, fsync, count) {
  const folder = join(root, `${label}-${fsync ? 'fsync' : 'nofsync'}`);
  const manager = await CheckpointManager.open({
    directory: folder,
    experiment: 'bench',
    storage: safetensors,
    integrity: { fsync },
    warn: () => {},
  });
  const rawFolder = join(folder, 'raw');
  mkdirSync(rawFolder, { recursive: true });
  const raw = [];
  const managed = [];
  // One warm-up of each, then alternate.
  await safetensors.save(join(rawFolder, 'warm.safetensors'), state, { fsync });
  await manager.save({ state, step: 0 });
  for (let i = 1; i <= count; i++) {
    execFileSync('sync');
    let start = now();
    await safetensors.save(join(rawFolder, `raw-${i}.safetensors`), state, { fsync });
    raw.push(seconds(start));
    execFileSync('sync');
    start = now();
    await manager.save({ state, step: i });
    managed.push(seconds(start));
  }
  await manager.close();
  rmSync(folder, { recursive: true, force: true });
  return { raw: median(raw), managed: median(managed) };
}

async function asyncReturn(makeInput, snapshot, count) {
  const folder = join(root, `async-${snapshot}`);
  const manager = await CheckpointManager.open({
    directory: folder,
    experiment: 'bench',
    storage: safetensors,
    async: true,
    snapshot,
    integrity: { fsync: true },
    warn: () => {},
  });
  const returns = [];
  const totals = [];
  for (let i = 0; i <= count; i++) {
    const state = makeInput();
    execFileSync('sync');
    const start = now();
    const outcome = await manager.save({ state, step: i });
    const returned = seconds(start);
    await outcome.done;
    if (i > 0) {
      returns.push(returned);
      totals.push(seconds(start));
    }
  }
  await manager.close();
  rmSync(folder, { recursive: true, force: true });
  return { returned: median(returns), total: median(totals) };
}

console.log(`# CheckpointManager overhead (${machine()}, median of ${runs} runs)`);
{
  const probe = join(root, 'probe');
  mkdirSync(probe, { recursive: true });
  const times = [];
  for (let i = 0; i < 50; i++) {
    const start = now();
    writeFileSync(join(probe, 'x.tmp'), 'x');
    renameSync(join(probe, 'x.tmp'), join(probe, 'x.json'));
    times.push(seconds(start));
  }
  console.log(`\nfile system floor: create + write 1 byte + rename, no fsync: ${formatSeconds(median(times))}`);
}
const small = makeState(1, 10_000);
const large = makeState(25, 4 * MiB); // 104.9 MB

const rows = [];
for (const fsync of [true, false]) {
  const s = await compare('10KB', small, fsync, runs * 4);
  rows.push([
    `10 KB, fsync ${fsync ? 'on' : 'off'}`,
    formatSeconds(s.raw),
    formatSeconds(s.managed),
    `+${formatSeconds(s.managed - s.raw)}`,
    `${(s.managed / s.raw).toFixed(2)}x`,
    fsync
      ? target('manager save of 10 KB adds < 2 ms', `+${formatSeconds(s.managed - s.raw)}`, s.managed - s.raw < 0.002)
      : '',
  ]);
  const l = await compare('100MB', large, fsync, runs);
  rows.push([
    `100 MB, fsync ${fsync ? 'on' : 'off'}`,
    formatSeconds(l.raw),
    formatSeconds(l.managed),
    `+${formatSeconds(l.managed - l.raw)}`,
    `${(l.managed / l.raw).toFixed(3)}x`,
    fsync
      ? target('manager save of 100 MB adds < 5%', `${(l.managed / l.raw).toFixed(3)}x`, l.managed / l.raw < 1.05)
      : '',
  ]);
}
table(
  'manager.save against safetensors.save (same state, same folder)',
  ['checkpoint', 'raw save', 'manager save', 'overhead', 'ratio', 'target'],
  rows,
);

const asyncRows = [];
for (const snapshot of ['copy', 'transfer', 'none']) {
  // 'transfer' detaches the caller's buffers, so each save gets a fresh state (made outside the timing).
  const a = await asyncReturn(() => (snapshot === 'transfer' ? makeState(25, 4 * MiB) : large), snapshot, runs);
  asyncRows.push([
    `100 MB, snapshot: '${snapshot}'`,
    formatSeconds(a.returned),
    formatSeconds(a.total),
    // The target (issue 5) is for 'transfer'; a 'copy' snapshot copies the 100 MB before returning by design.
    snapshot === 'transfer'
      ? target(
          "async save of 100 MB (snapshot: 'transfer') returns < 5 ms",
          formatSeconds(a.returned),
          a.returned < 0.005,
        )
      : verdict(a.returned < 0.005),
  ]);
}
table(
  'async save: time until save() returns, and until the write is committed',
  ['checkpoint', 'save() returns', 'committed', '< 5 ms'],
  asyncRows,
);

// Compression: the cost of gzip on weights that look like trained ones (normal floats).
{
  const floats = new Float32Array((32 * MiB) / 4);
  for (let i = 0; i < floats.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - Math.random()));
    floats[i] = 0.02 * r * Math.cos(2 * Math.PI * Math.random());
    floats[i + 1] = 0.02 * r * Math.sin(2 * Math.PI * Math.random());
  }
  const realistic = { w: tensor('F32', [floats.length], new Uint8Array(floats.buffer)) };
  const rowsGz = [];
  for (const compression of [false, 'gzip']) {
    const folder = join(root, `gzip-${compression}`);
    const manager = await CheckpointManager.open({
      directory: folder,
      experiment: 'bench',
      storage: safetensors,
      compression,
      integrity: { fsync: false },
      warn: () => {},
    });
    const saves = [];
    const loads = [];
    let size = 0;
    for (let i = 0; i < 3; i++) {
      let start = now();
      const { record } = await manager.save({ state: realistic, step: i });
      saves.push(seconds(start));
      size = record.size;
      start = now();
      await manager.load(record.id);
      loads.push(seconds(start));
    }
    await manager.close();
    rmSync(folder, { recursive: true, force: true });
    rowsGz.push([
      compression || 'none',
      formatSeconds(median(saves)),
      formatSeconds(median(loads)),
      `${(size / MiB).toFixed(1)} MiB`,
    ]);
  }
  table('compression: 32 MiB of normal-distributed F32 weights', ['compression', 'save', 'load', 'file size'], rowsGz);
}
rmSync(root, { recursive: true, force: true });
