#!/usr/bin/env node
// torch.distributed.checkpoint (issue #18) from 4 processes: a state of 64 tensors, each split by rows
// across 4 ranks, saved and loaded by 4 processes, ckpt (saveDcp, openDcp) against torch's dcp.save and
// dcp.load with 4 gloo ranks on the same machine; and one process reading the whole checkpoint torch
// wrote, ckpt's openDcp().load() against dcp.load into full tensors. Every process is started and has
// its data ready before the clock starts; a run's time is its slowest rank's.
//
//   node tools/bench/dcp.mjs [--gib 4] [--runs 3] [--dir /tmp/ckpt-bench]
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { tensor } from '@ckpt/core';
import { DcpShard, openDcp } from '@ckpt/storage-pytorch';
import {
  ddFloor,
  formatSeconds,
  GiB,
  machine,
  median,
  printTargets,
  python,
  runPython,
  table,
  timeIt,
} from './lib.mjs';

const { values: args } = parseArgs({
  options: {
    gib: { type: 'string', default: '4' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: '/tmp/ckpt-bench' },
    rank: { type: 'string' },
    work: { type: 'string' },
    folder: { type: 'string' },
  },
});
const WORLD = 4;
const TENSORS = 64;
const total = Number(args.gib) * GiB;
const rows = total / TENSORS / 4 / 1024; // F32 tensors of [rows, 1024]
const each = rows / WORLD;

/** This rank's rows of every tensor: tensor i holds i + 1 everywhere. */
function rankState(rank) {
  const model = {};
  for (let i = 0; i < TENSORS; i++) {
    const data = new Uint8Array(each * 1024 * 4);
    new Float32Array(data.buffer).fill(i + 1);
    model[`layers.${i}.weight`] = new DcpShard(tensor('F32', [each, 1024], data), {
      offsets: [rank * each, 0],
      shape: [rows, 1024],
    });
  }
  return { model };
}

// ---- a rank (child process): get ready, wait for "go", do the work, print the seconds ----
if (args.rank !== undefined) {
  const rank = Number(args.rank);
  const { saveDcp } = await import('@ckpt/storage-pytorch');
  const state = args.work === 'save' ? rankState(rank) : undefined;
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  const start = performance.now();
  if (args.work === 'save') {
    await saveDcp(args.folder, state, { rank, worldSize: WORLD, saveId: 'bench' });
  } else {
    const checkpoint = openDcp(args.folder);
    let touched = 0;
    for (const name of checkpoint.keys()) {
      const view = checkpoint.tensor(name, { offsets: [rank * each, 0], sizes: [each, 1024] });
      touched += view.data.byteLength;
    }
    checkpoint.close();
    if (touched !== total / WORLD) throw new Error(`rank ${rank} read ${touched} bytes`);
  }
  process.stdout.write(`${(performance.now() - start) / 1000}\n`);
  process.exit(0);
}

/** Starts WORLD ranks, lets them all get ready, then times them together: the slowest rank's seconds. */
async function ranks(work, folder) {
  const script = new URL(import.meta.url).pathname;
  const children = Array.from({ length: WORLD }, (_, rank) =>
    spawn(process.execPath, [script, '--rank', String(rank), '--work', work, '--folder', folder, '--gib', args.gib], {
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const exited = children.map((child) => new Promise((resolve) => child.on('exit', resolve)));
  const lines = children.map((child) => {
    const seen = [];
    let buffer = '';
    const waiters = [];
    child.stdout.on('data', (d) => {
      buffer += d;
      for (let at = buffer.indexOf('\n'); at >= 0; at = buffer.indexOf('\n')) {
        seen.push(buffer.slice(0, at));
        buffer = buffer.slice(at + 1);
        waiters.shift()?.();
      }
    });
    return async () => {
      while (seen.length === 0) await new Promise((resolve) => waiters.push(resolve));
      return seen.shift();
    };
  });
  await Promise.all(lines.map((next) => next()));
  for (const child of children) child.stdin.write('go\n');
  const seconds = await Promise.all(lines.map(async (next) => Number(await next())));
  await Promise.all(exited);
  return Math.max(...seconds);
}

const runs = Number(args.runs);
const root = join(args.dir, 'dcp');
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
console.log(
  `# torch.distributed.checkpoint, ${args.gib} GiB from ${WORLD} processes (${machine()}, Python ${python}, median of ${runs} runs)`,
);

// ---- torch: 4 gloo ranks save (2 threads each: 8 files), load into DTensors; or one process loads whole ----
const TORCH = `
import json, os, shutil, socket, sys, time, warnings
warnings.filterwarnings('ignore')
import torch, torch.distributed as dist, torch.multiprocessing as mp
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter
work, path, rows, count, world = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

def worker(rank, port, out):
    os.environ['MASTER_ADDR'] = '127.0.0.1'; os.environ['MASTER_PORT'] = str(port)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    from torch.distributed.tensor import DTensor, Shard, init_device_mesh
    mesh = init_device_mesh('cpu', (world,))
    each = rows // world
    names = [f'layers.{i}.weight' for i in range(count)]
    if work == 'save':
        state = {'model': {n: DTensor.from_local(torch.full((each, 1024), float(i + 1)), mesh, [Shard(0)]) for i, n in enumerate(names)}}
    else:
        state = {'model': {n: DTensor.from_local(torch.empty((each, 1024)), mesh, [Shard(0)]) for n in names}}
    dist.barrier(); t = time.perf_counter()
    if work == 'save':
        dcp.save(state, storage_writer=FileSystemWriter(path, thread_count=2, sync_files=True))
    else:
        dcp.load(state, storage_reader=FileSystemReader(path))
    dist.barrier()
    if rank == 0:
        with open(out, 'w') as f: json.dump({'seconds': time.perf_counter() - t, 'files': len([n for n in os.listdir(path) if n.endswith('.distcp')])}, f)
    dist.barrier()  # nobody leaves while another still talks (gloo aborts otherwise)
    dist.destroy_process_group()

if work == 'whole':
    full = {'model': {f'layers.{i}.weight': torch.empty((rows, 1024)) for i in range(count)}}
    t = time.perf_counter(); dcp.load(full, storage_reader=FileSystemReader(path), no_dist=True)
    print(json.dumps({'seconds': time.perf_counter() - t}))
else:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    out = path + '.json'
    mp.start_processes(worker, args=(port, out), nprocs=world, start_method='fork')  # fork: a -c script has no module to import
    print(open(out).read()); os.remove(out)
`;
const torch = (work, path) => runPython(TORCH, [work, path, String(rows), String(TENSORS), String(WORLD)]);

// ---- turns, interleaved so that both meet the same disk: ckpt saves, torch saves, ... ------------
const ckptSaves = [];
const torchSaves = [];
let torchFiles = 0;
for (let i = 0; i <= runs; i++) {
  const ckptFolder = join(root, 'ckpt');
  const torchFolder = join(root, 'torch');
  rmSync(ckptFolder, { recursive: true, force: true });
  rmSync(torchFolder, { recursive: true, force: true });
  spawnSync('sync');
  const ckptSeconds = await ranks('save', ckptFolder);
  spawnSync('sync');
  const torchRun = torch('save', torchFolder);
  torchFiles = torchRun.files;
  if (i > 0) {
    // the first turn is a warm-up
    ckptSaves.push(ckptSeconds);
    torchSaves.push(torchRun.seconds);
  }
}
const ckptLoads = [];
const torchLoads = [];
const ckptWholes = [];
const torchWholes = [];
for (let i = 0; i < runs; i++) {
  ckptLoads.push(await ranks('load', join(root, 'ckpt')));
  torchLoads.push(torch('load', join(root, 'torch')).seconds);
  // One process reads the whole checkpoint torch wrote.
  ckptWholes.push(
    await timeIt(() => {
      const checkpoint = openDcp(join(root, 'torch'));
      const state = checkpoint.load();
      checkpoint.close();
      return state;
    }, 1),
  );
  torchWholes.push(torch('whole', join(root, 'torch')).seconds);
}
const ckptWhole = median(ckptWholes);
const torchResult = { saves: torchSaves, loads: torchLoads, whole: torchWholes, files: torchFiles };

// ---- the write floor: dd of the same bytes with conv=fsync ---------------------------------------
const floor = await ddFloor(join(root, 'dd.bin'), total, runs);
rmSync(root, { recursive: true, force: true });

const saveRatio = median(torchResult.saves) / median(ckptSaves);
const loadRatio = median(torchResult.loads) / median(ckptLoads);
const wholeRatio = median(torchResult.whole) / ckptWhole;
table(
  `Save ${args.gib} GiB (${TENSORS} tensors split by rows) from ${WORLD} processes, flushed`,
  ['contender', 'time', 'ckpt is faster by'],
  [
    [
      `ckpt saveDcp, ${WORLD} processes, ${WORLD} files (digests, manifests, commit)`,
      formatSeconds(median(ckptSaves)),
      '',
    ],
    [
      `torch dcp.save, ${WORLD} gloo ranks, ${torchResult.files} files (2 threads each), synced (strongest)`,
      formatSeconds(median(torchResult.saves)),
      `${saveRatio.toFixed(2)}x`,
    ],
    [`\`dd\` ${args.gib} GiB with \`conv=fsync\` (the write floor)`, formatSeconds(floor), ''],
  ],
);
table(
  `Load it back into ${WORLD} processes, each its rows of every tensor`,
  ['contender', 'time', 'ckpt is faster by'],
  [
    ['ckpt openDcp + tensor(name, its rows): views of the mapped files', formatSeconds(median(ckptLoads)), ''],
    [
      'torch dcp.load into DTensors, 4 gloo ranks (strongest)',
      formatSeconds(median(torchResult.loads)),
      `${loadRatio.toFixed(1)}x`,
    ],
  ],
);
table(
  `One process reads the whole checkpoint torch wrote (${WORLD} chunks per tensor, assembled)`,
  ['contender', 'time', 'ckpt is faster by'],
  [
    ['ckpt openDcp().load()', formatSeconds(ckptWhole), ''],
    [
      'torch dcp.load into full tensors (strongest)',
      formatSeconds(median(torchResult.whole)),
      `${wholeRatio.toFixed(2)}x`,
    ],
  ],
);
printTargets([
  [
    `${WORLD}-process DCP save >= 1.5x torch dcp.save`,
    `${saveRatio.toFixed(2)}x (ckpt ${(median(ckptSaves) / floor).toFixed(2)}x, torch ${(median(torchResult.saves) / floor).toFixed(2)}x the dd floor)`,
    saveRatio >= 1.5,
  ],
  [`${WORLD}-process DCP load (views) >= 2x torch dcp.load`, `${loadRatio.toFixed(1)}x`, loadRatio >= 2],
]);
