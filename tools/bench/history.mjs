#!/usr/bin/env node
// Does a save cost more as an experiment's history grows? One experiment, tiny checkpoints
// (one 4-byte tensor), no fsync, keep-everything retention: the manager's own work, nothing else.
//
//   node tools/bench/history.mjs [--records 50000] [--dir /dev/shm/ckpt-bench]
//
// Prints the growth curve: the median cost of the 200 saves before each mark, reopening the
// experiment at that mark (best of three), and a filtered, limited list; then what reopening
// cannot go below here: a stat of every file and parsing the JSON index. Targets (issue 17): a save at
// 50,000 records within 1.2x of one at 100; reopening at 50,000 < 100 ms; the list < 20 ms.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CheckpointManager, tensor } from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';
import { bestOf, machine, median, table, target } from './lib.mjs';

const { values: args } = parseArgs({
  // Memory-backed by default: the disk's writeback noise would hide the manager's own cost.
  options: {
    records: { type: 'string', default: '50000' },
    dir: { type: 'string', default: existsSync('/dev/shm') ? '/dev/shm/ckpt-bench' : '/tmp/ckpt-bench' },
  },
});
const total = Number(args.records);
const root = join(args.dir, `history-${process.pid}`);
mkdirSync(root, { recursive: true });
const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;
const options = {
  directory: root,
  experiment: 'long-run',
  storage: safetensors,
  integrity: { fsync: false },
  warn: () => {},
};
const state = { w: tensor('F32', [1], new Uint8Array(4)) };
const window = 200;
const marks = [100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000].filter((m) => m <= total);

console.log(`# save cost against history (${machine()}; files in ${args.dir})`);
// Warm up (the JIT) on a throwaway experiment, so that the first mark is not the slowest for that reason.
{
  const warm = await CheckpointManager.open({ ...options, experiment: 'warm-up' });
  for (let i = 1; i <= 300; i++) await warm.save({ state, step: i, metrics: { loss: 1 / i } });
  await warm.close();
}
let manager = await CheckpointManager.open(options);
let saved = 0;
const rows = [];
const curve = new Map();
for (const mark of marks) {
  // Fill up to the window before the mark, then time the window.
  while (saved < mark - window) await manager.save({ state, step: ++saved, metrics: { loss: 1 / saved } });
  const times = [];
  while (saved < mark) {
    const start = process.hrtime.bigint();
    await manager.save({ state, step: ++saved, metrics: { loss: 1 / saved } });
    times.push(ms(start));
  }
  // The median: the kernel's periodic writeback of dirty pages lands on a few saves at random.
  const perSave = median(times);
  const mean = times.reduce((sum, t) => sum + t, 0) / times.length;
  curve.set(mark, perSave);
  // Reopening: the best of three (this machine's neighbours add tens of milliseconds at random).
  let reopen = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    await manager.close();
    const opening = process.hrtime.bigint();
    manager = await CheckpointManager.open(options);
    reopen = Math.min(reopen, ms(opening));
  }
  // The first list after opening also pays for collecting the garbage the opening left; the median of
  // five is what a list costs.
  const lists = [];
  for (let i = 0; i < 5; i++) {
    const listing = process.hrtime.bigint();
    const found = await manager.list({ metric: { name: 'loss', max: 0.5 }, sortBy: 'metric:loss', limit: 10 });
    lists.push(ms(listing));
    if (found.length !== 10) throw new Error(`list found ${found.length}`);
  }
  const list = median(lists);
  rows.push([
    mark.toLocaleString('en-US'),
    `${perSave.toFixed(2)} ms`,
    `${(perSave / (curve.get(marks[0]) ?? perSave)).toFixed(2)}x`,
    `${mean.toFixed(2)} ms`,
    `${reopen.toFixed(1)} ms`,
    `${list.toFixed(2)} ms`,
    `${lists[0].toFixed(2)} ms`,
  ]);
}
await manager.close();

// What opening cannot go below while it checks every record's file (the manager's promise: statuses are
// current once `open` returns) and keeps the index as JSON: stat every file of the folder (`find`, one
// fstatat per entry), and parse the index (JSON.parse alone). The manager runs the two side by side.
const folder = join(root, options.experiment);
const bestMs = async (fn) => (await bestOf(fn, 3, 1)) * 1e3; // lib.mjs: the best of 3 single runs
const statFloor = await bestMs(() =>
  execFileSync('find', [folder, '-maxdepth', '1', '-printf', '%s\n'], { maxBuffer: 1 << 30 }),
);
const parseFloor = await bestMs(() => JSON.parse(readFileSync(join(folder, 'checkpoint_metadata.json'), 'utf8')));
table(
  `what opening ${marks.at(-1).toLocaleString('en-US')} records cannot go below on this machine (best of 3)`,
  ['step', 'time'],
  [
    ['stat every file of the folder (`find -maxdepth 1 -printf %s`)', `${statFloor.toFixed(1)} ms`],
    ['parse the index (`JSON.parse` of checkpoint_metadata.json)', `${parseFloor.toFixed(1)} ms`],
  ],
);

table(
  'per-save cost, reopening and a filtered list, by the number of records',
  [
    'records',
    'save (median of 200)',
    'vs 100 records',
    'mean (with compactions)',
    'reopen (best of 3)',
    'list (filter, sort, limit 10; median of 5)',
    'first list after opening',
  ],
  rows,
);
const last = marks.at(-1);
const [, , , , reopenLast, listLast, firstListLast] = rows.at(-1);
table(
  `targets at ${last.toLocaleString('en-US')} records`,
  ['target', 'measured', 'verdict'],
  [
    [
      'save within 1.2x of 100 records',
      rows.at(-1)[2],
      target(
        `save at ${last.toLocaleString('en-US')} records within 1.2x of 100`,
        rows.at(-1)[2],
        curve.get(last) / curve.get(marks[0]) <= 1.2,
      ),
    ],
    [
      `reopen < 100 ms (${(Number.parseFloat(reopenLast) / Math.max(statFloor, parseFloor)).toFixed(2)}x the slower floor step)`,
      reopenLast,
      target(
        `reopen at ${last.toLocaleString('en-US')} records < 100 ms`,
        `${reopenLast} (floor ${Math.max(statFloor, parseFloor).toFixed(0)} ms)`,
        Number.parseFloat(reopenLast) < 100,
      ),
    ],
    [
      'filtered list < 20 ms (median of 5)',
      `${listLast} (first after opening ${firstListLast})`,
      target(
        `filtered list at ${last.toLocaleString('en-US')} records < 20 ms`,
        `${listLast} (first ${firstListLast})`,
        Number.parseFloat(listLast) < 20,
      ),
    ],
  ],
);
rmSync(root, { recursive: true, force: true });
