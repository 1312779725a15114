#!/usr/bin/env node
// Sharded checkpoints (issue #18): a state saved as 8 shards by the CheckpointManager (staged, hashed,
// flushed, renamed into place, recorded) against torch.distributed.checkpoint writing the same state as
// 8 files (FileSystemWriter, 8 threads, files synced), and against writing the same bytes as one file.
// Loads: ckpt's zero-copy views against dcp.load into preallocated tensors. Saves alternate turn by turn
// (ckpt, DCP, ckpt, ...), so that both meet the same disk.
//
//   node tools/bench/sharded.mjs [--gib 4] [--runs 3] [--dir /tmp/ckpt-bench]
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CheckpointManager, tensor } from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';
import {
  bestOf,
  ddFloor,
  formatSeconds,
  GiB,
  machine,
  median,
  printTargets,
  python,
  runPython,
  table,
  timeFreshWrite,
  timeIt,
} from './lib.mjs';

const { values: args } = parseArgs({
  options: {
    gib: { type: 'string', default: '4' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: '/tmp/ckpt-bench' },
  },
});
const runs = Number(args.runs);
const total = Number(args.gib) * GiB;
const TENSORS = 64;
const each = total / TENSORS;
const SHARDS = 8;
const root = join(args.dir, 'sharded');
rmSync(root, { recursive: true, force: true });

console.log(`# ${args.gib} GiB as ${SHARDS} shards (${machine()}, Python ${python}, median of ${runs} runs)`);

const state = {};
for (let i = 0; i < TENSORS; i++)
  state[`layers.${i}.weight`] = tensor('F32', [each / 4], new Uint8Array(each).fill(i + 1));

// --- torch.distributed.checkpoint: one save or one load per call, so that turns can alternate ---------
const DCP = `
import json, os, shutil, sys, time, warnings
warnings.filterwarnings('ignore')
import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter
work, path, total, count, shards = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
n = total // count // 4
if work == 'save':
    state = {f'layers.{i}.weight': torch.full((n,), float(i + 1)) for i in range(count)}
    shutil.rmtree(path, ignore_errors=True)
    os.sync()
    t = time.perf_counter()
    dcp.save(state, storage_writer=FileSystemWriter(path, thread_count=shards, sync_files=True))
    seconds = time.perf_counter() - t
else:
    target = {f'layers.{i}.weight': torch.empty((n,)) for i in range(count)}
    t = time.perf_counter()
    dcp.load(target, storage_reader=FileSystemReader(path))
    seconds = time.perf_counter() - t
print(json.dumps({'seconds': seconds, 'files': len([f for f in os.listdir(path) if f.endswith('.distcp')])}))
`;
const dcpPath = join(root, 'dcp');
const dcpRun = (work) => runPython(DCP, [work, dcpPath, String(total), String(TENSORS), String(SHARDS)]);

// --- turns: the manager's sharded save, then DCP's, then the manager's, ... -----------------------
const manager = await CheckpointManager.open({
  directory: root,
  experiment: 'bench',
  storage: safetensors,
  saveOptions: { maxShardSize: total / SHARDS },
  warn: () => {},
});
const saves = [];
const dcpSaves = [];
let dcpFiles = 0;
let lastId;
for (let i = 0; i <= runs; i++) {
  if (lastId) await manager.delete(lastId, { force: true });
  const seconds = await timeFreshWrite(join(root, 'nothing'), async () => {
    lastId = (await manager.save({ state, step: i, force: true })).record.id;
  });
  const dcpSave = dcpRun('save');
  dcpFiles = dcpSave.files;
  if (i > 0) {
    // the first turn is a warm-up
    saves.push(seconds);
    dcpSaves.push(dcpSave.seconds);
  }
}
const ckptSave = median(saves);
const saved = await manager.list();
if (saved[0]?.files?.length !== SHARDS + 1)
  throw new Error(`expected ${SHARDS} shards, got ${saved[0]?.files?.length}`);
const ckptLoad = await bestOf(() => manager.load(lastId), 10, 3);
const ckptLoadRead = await timeIt(async () => {
  const { state: loaded } = await manager.load(lastId);
  let x = 0;
  for (const t of Object.values(loaded))
    x += Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).indexOf(0);
  return x;
}, runs);
await manager.close();
dcpRun('load'); // warm, as the manager's loads are
const dcpLoads = [];
for (let i = 0; i < runs; i++) dcpLoads.push(dcpRun('load').seconds);
const dcp = { save: median(dcpSaves), load: median(dcpLoads), files: dcpFiles };

// --- ckpt: one file of the same bytes -------------------------------------------------------
const single = join(root, 'one.safetensors');
const oneFile = [];
for (let i = 0; i < runs; i++) oneFile.push(await timeFreshWrite(single, () => safetensors.save(single, state)));
rmSync(single, { force: true });

// --- the write floor: dd of the same bytes with conv=fsync ---------------------------------------
const floor = await ddFloor(join(root, 'dd.bin'), total, runs);
rmSync(root, { recursive: true, force: true });

const saveRatio = dcp.save / ckptSave;
const loadRatio = dcp.load / ckptLoad;
table(
  `Save ${args.gib} GiB (${TENSORS} tensors) as ${SHARDS} files, flushed`,
  ['contender', 'time', 'ckpt is faster by'],
  [
    ['ckpt manager save, 8 shards (digests, staging, rename, record)', formatSeconds(ckptSave), ''],
    [
      `torch.distributed.checkpoint save, ${dcp.files} files, ${SHARDS} threads, synced (strongest)`,
      formatSeconds(dcp.save),
      `${saveRatio.toFixed(2)}x`,
    ],
    [
      'ckpt safetensors save, one file, digest, fsync',
      formatSeconds(median(oneFile)),
      `${(median(oneFile) / ckptSave).toFixed(2)}x`,
    ],
    [
      `\`dd\` ${args.gib} GiB with \`conv=fsync\` (the write floor)`,
      formatSeconds(floor),
      `${(ckptSave / floor).toFixed(2)}x the floor`,
    ],
  ],
);
table(
  `Load the ${args.gib} GiB back`,
  ['contender', 'time', 'ckpt is faster by'],
  [
    ['ckpt manager load (zero-copy views)', formatSeconds(ckptLoad), ''],
    ['ckpt manager load + read every byte', formatSeconds(ckptLoadRead), ''],
    ['dcp.load into preallocated tensors (strongest)', formatSeconds(dcp.load), `${loadRatio.toFixed(2)}x`],
  ],
);
printTargets([
  [
    `sharded save >= 1.5x torch.distributed.checkpoint`,
    `${saveRatio.toFixed(2)}x (ckpt ${(ckptSave / floor).toFixed(2)}x, dcp ${(dcp.save / floor).toFixed(2)}x the dd floor)`,
    saveRatio >= 1.5,
  ],
  [`sharded load (views) >= 2x dcp.load`, `${loadRatio.toFixed(0)}x`, loadRatio >= 2],
]);
