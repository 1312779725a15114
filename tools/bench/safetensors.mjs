#!/usr/bin/env node
// safetensors: @ckpt/storage-safetensors against Python safetensors (numpy), in one run.
//
//   node tools/bench/safetensors.mjs [--runs 3] [--dir /tmp/ckpt-bench]
//
// 1. Open and list a 2 GiB file of 1,000 tensors, and a 2 MiB one with as many tensors.
// 2. Load every tensor and read every byte (an XOR over 32-bit words, in both languages).
// 3. Save 1 GiB from memory with its SHA-256, against save_file followed by hashlib.
// 4. Memory: JS heap plus anonymous memory added by loading and reading the 2 GiB file.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { tensor } from '@ckpt/core';
import { SafetensorsFile, safetensors } from '@ckpt/storage-safetensors';
import {
  bestOf,
  ddFloor,
  formatSeconds,
  MiB,
  machine,
  median,
  printTargets,
  python,
  runPython,
  table,
  timeFreshWrite,
  timeIt,
  warm,
} from './lib.mjs';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, dir: { type: 'string', default: '/tmp/ckpt-bench' } },
});
const runs = Number(args.runs);
mkdirSync(args.dir, { recursive: true });

/** A file of `count` F32 tensors of `bytesEach` bytes; tensor i holds the byte i % 255, never 0xff. */
async function prepare(name, count, bytesEach) {
  const path = join(args.dir, `v2-${name}`);
  if (!existsSync(path) || statSync(path).size < count * bytesEach) {
    const state = {};
    for (let i = 0; i < count; i++) {
      const bytes = new Uint8Array(bytesEach).fill(i % 255);
      state[`model.layers.${i}.weight`] = tensor('F32', [bytesEach / 4], bytes);
    }
    await safetensors.save(path, state, { fsync: false });
  }
  warm(path);
  return path;
}

/**
 * Reads every byte at memory speed: a memchr for 0xff, which the data never
 * holds (numpy's equivalent below is a vectorised XOR reduction).
 */
function readAll(data) {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).indexOf(0xff);
}

console.log(`# safetensors (${machine()}, Python ${python}, median of ${runs} runs)`);

const big = await prepare('st-2GiB-1000.safetensors', 1000, 2 * MiB + 4096);
const small = await prepare('st-2MiB-1000.safetensors', 1000, 2048);

// --- 1. open and list -------------------------------------------------------------
// Sub-millisecond work: the best mean of 20 batches of 20 calls, on both sides.
const listRuns = Math.max(runs, 20);
const openList = async (path) => (await SafetensorsFile.open(path)).names;
const listBig = await bestOf(() => openList(big), listRuns);
const listSmall = await bestOf(() => openList(small), listRuns);
const inspectBig = await bestOf(() => safetensors.inspect(big), listRuns);
const pyOpen = runPython(
  `
import json, sys, time
from safetensors import safe_open
from safetensors.numpy import load_file
def median(xs): return sorted(xs)[len(xs) // 2]
big, small, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def keys(path):
    best = float('inf')
    for _ in range(max(runs, 20)):
        t = time.perf_counter()
        for _ in range(20):
            with safe_open(path, 'np') as f: names = list(f.keys())
        best = min(best, (time.perf_counter() - t) / 20)
    return best
lf = []
for _ in range(runs):
    t = time.perf_counter(); d = load_file(big); names = list(d); lf.append(time.perf_counter() - t); del d
print(json.dumps({'load_file': median(lf), 'keys_big': keys(big), 'keys_small': keys(small)}))
`,
  [big, small, String(runs)],
);
const listRatio = pyOpen.keys_big / listBig;
table(
  'Open and list 1,000 tensors',
  ['contender', 'time', 'ckpt (2 GiB) is faster by'],
  [
    ['ckpt `SafetensorsFile.open(path)` + `names`, 2 GiB file', formatSeconds(listBig), ''],
    ['ckpt `SafetensorsFile.open(path)` + `names`, 2 MiB file (same tensor count)', formatSeconds(listSmall), ''],
    ['ckpt `inspect` (names, dtypes, shapes, totals), 2 GiB', formatSeconds(inspectBig), ''],
    ['Python `safe_open(...).keys()`, 2 GiB (strongest)', formatSeconds(pyOpen.keys_big), `${listRatio.toFixed(2)}x`],
    [
      'Python `safe_open(...).keys()`, 2 MiB',
      formatSeconds(pyOpen.keys_small),
      `${(pyOpen.keys_small / listBig).toFixed(2)}x`,
    ],
    [
      'Python `safetensors.numpy.load_file`, 2 GiB (copies)',
      formatSeconds(pyOpen.load_file),
      `${(pyOpen.load_file / listBig).toFixed(0)}x`,
    ],
  ],
);

// --- 2. load and read every byte ---------------------------------------------------
const loadOnly = await timeIt(() => safetensors.load(big), runs);
const loadRead = await timeIt(async () => {
  const { state } = await safetensors.load(big);
  let x = 0;
  for (const t of Object.values(state)) x += readAll(t.data);
  return x;
}, runs);
const loadOne = await timeIt(async () => {
  const file = await SafetensorsFile.open(big);
  let x = 0;
  for (const name of file.names) x += readAll(file.tensor(name).data);
  file.close();
  return x;
}, runs);
const pyRead = runPython(
  `
import json, sys, time
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
def median(xs): return sorted(xs)[len(xs) // 2]
path, runs = sys.argv[1], int(sys.argv[2])
def fold(a): return int(np.bitwise_xor.reduce(a.view(np.int32)))
lf, so, only = [], [], []
for _ in range(runs):
    t = time.perf_counter(); d = load_file(path); only.append(time.perf_counter() - t); del d
for _ in range(runs):
    t = time.perf_counter(); x = 0
    for a in load_file(path).values(): x ^= fold(a)
    lf.append(time.perf_counter() - t)
for _ in range(runs):
    t = time.perf_counter(); x = 0
    with safe_open(path, 'np') as f:
        for k in f.keys(): x ^= fold(f.get_tensor(k))
    so.append(time.perf_counter() - t)
print(json.dumps({'load_file': median(lf), 'get_tensor': median(so), 'load_only': median(only)}))
`,
  [big, String(runs)],
);
table(
  'Load every tensor of the 2 GiB file (1,000 tensors), then read every byte',
  ['contender', 'time', 'ckpt `load` is faster by'],
  [
    ['ckpt `load` (views), no read', formatSeconds(loadOnly), ''],
    ['Python `load_file`, no read', formatSeconds(pyRead.load_only), `${(pyRead.load_only / loadOnly).toFixed(0)}x`],
    ['ckpt `load` (views) + read', formatSeconds(loadRead), ''],
    ['ckpt `SafetensorsFile.tensor()` one by one + read', formatSeconds(loadOne), ''],
    ['Python `load_file` + read', formatSeconds(pyRead.load_file), `${(pyRead.load_file / loadRead).toFixed(2)}x`],
    [
      'Python `safe_open().get_tensor` + read',
      formatSeconds(pyRead.get_tensor),
      `${(pyRead.get_tensor / loadRead).toFixed(2)}x`,
    ],
  ],
);

// --- 3. save 1 GiB with its digest ---------------------------------------------------
const out = join(args.dir, 'st-save-1GiB.safetensors');
const saveState = {};
for (let i = 0; i < 64; i++) {
  saveState[`layer.${i}.weight`] = tensor('F32', [4 * MiB], new Uint8Array(new Uint32Array(4 * MiB).fill(i).buffer));
}
// Writes are noisy on a VM: one warm-up, then at least five runs each, each writing a new file (lib.mjs).
const saveRuns = Math.max(runs, 5);
const timeFresh = async (fn) => {
  const times = [];
  for (let i = 0; i < saveRuns; i++) times.push(await timeFreshWrite(out, fn));
  return median(times);
};
await safetensors.save(out, saveState, { fsync: false });
const saveNoSync = await timeFresh(() => safetensors.save(out, saveState, { fsync: false }));
const saveSync = await timeFresh(() => safetensors.save(out, saveState));
rmSync(out, { force: true });
const pySave = runPython(
  `
import json, os, sys, time, hashlib
import numpy as np
from safetensors.numpy import save_file
def median(xs): return sorted(xs)[len(xs) // 2]
path, runs = sys.argv[1], int(sys.argv[2])
tensors = {f'layer.{i}.weight': np.full(4 * 2**20, i, dtype=np.uint32).view(np.float32) for i in range(64)}
def timed(fsync):
    times = []
    for i in range(runs + 1):
        if os.path.exists(path): os.remove(path)
        os.sync()
        t = time.perf_counter()
        save_file(tensors, path)
        with open(path, 'rb') as f:
            if fsync: os.fsync(f.fileno())
            digest = hashlib.file_digest(f, 'sha256').hexdigest()
        if i > 0: times.append(time.perf_counter() - t)  # the first run warms up
    return median(times)
print(json.dumps({'save_hash': timed(False), 'save_hash_fsync': timed(True)}))
`,
  [out, String(saveRuns)],
);
const floor = await ddFloor(out, 1024 * MiB, saveRuns);
const toFloor = saveSync / floor;
table(
  'Save 1 GiB (64 tensors) from memory with its SHA-256',
  ['contender', 'time', 'ckpt is faster by'],
  [
    ['ckpt `save`, digest in the same pass, no fsync', formatSeconds(saveNoSync), ''],
    ['ckpt `save`, digest in the same pass, fsync (the default)', formatSeconds(saveSync), ''],
    [
      'Python `save_file` then `hashlib.file_digest`, no fsync',
      formatSeconds(pySave.save_hash),
      `${(pySave.save_hash / saveNoSync).toFixed(2)}x (against no fsync)`,
    ],
    [
      'Python `save_file`, fsync, then `hashlib.file_digest` (strongest)',
      formatSeconds(pySave.save_hash_fsync),
      `${(pySave.save_hash_fsync / saveSync).toFixed(2)}x`,
    ],
    [
      '`dd` 1 GiB of zeros with `conv=fsync` (the write floor)',
      formatSeconds(floor),
      `${toFloor.toFixed(2)}x the floor`,
    ],
  ],
);

// --- 4. memory --------------------------------------------------------------------------
const probe = `
import { readFileSync } from 'node:fs';
import { safetensors } from '@ckpt/storage-safetensors';
const anon = () => Number(/RssAnon:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const measure = () => { globalThis.gc(); return process.memoryUsage().heapUsed + anon(); };
await safetensors.inspect(process.argv[1]);
const before = measure();
const { state } = await safetensors.load(process.argv[1]);
let x = 0;
for (const t of Object.values(state)) x += Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).indexOf(0xff);
console.log(JSON.stringify({ added: measure() - before, x }));
`;
const memory = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', probe, big], {
  encoding: 'utf8',
  cwd: new URL('.', import.meta.url).pathname,
});
const added = JSON.parse(memory.stdout).added;
table(
  'Memory',
  ['measure', 'value', 'target'],
  [['JS heap + anonymous memory added by loading and reading 2 GiB', `${(added / MiB).toFixed(1)} MiB`, '< 64 MiB']],
);

const targetRows = [];
targetRows.push([
  `listing flat in file size: 2 GiB <= 2x the 2 MiB file`,
  `${(listBig / listSmall).toFixed(2)}x`,
  listBig <= 2 * listSmall,
]);
targetRows.push([
  `listing >= 10x faster than \`load_file\``,
  `${(pyOpen.load_file / listBig).toFixed(0)}x`,
  pyOpen.load_file / listBig >= 10,
]);
targetRows.push([`open + list >= 1.5x \`safe_open().keys()\``, `${listRatio.toFixed(2)}x`, listRatio >= 1.5]);
targetRows.push([
  `save + digest >= 1.5x \`save_file\` + hashlib`,
  `${(pySave.save_hash / saveNoSync).toFixed(2)}x`,
  pySave.save_hash / saveNoSync >= 1.5,
]);
targetRows.push([
  `save + digest + fsync >= 1.5x \`save_file\` + fsync + hashlib`,
  `${(pySave.save_hash_fsync / saveSync).toFixed(2)}x`,
  pySave.save_hash_fsync / saveSync >= 1.5,
]);
targetRows.push([`save + digest + fsync <= 1.25x the \`dd\` floor`, `${toFloor.toFixed(2)}x`, toFloor <= 1.25]);
targetRows.push([`loading 2 GiB adds < 64 MiB`, `${(added / MiB).toFixed(1)} MiB`, added < 64 * MiB]);
printTargets(targetRows);
