#!/usr/bin/env node
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { convertCheckpoint, StorageRegistry, tensor } from '@ckpt/core';
import { mapFile } from '@ckpt/native';
import { pytorch } from '@ckpt/storage-pytorch';
import { safetensors } from '@ckpt/storage-safetensors';
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

const COUNT = 200;
const EACH = (1 << 30) / COUNT - (((1 << 30) / COUNT) % 4096);

/** `count` F32 tensors of `each` bytes (200 make about 1 GiB); tensor i holds the byte i % 255, never 0xff. */
function stateDict(count = COUNT, each = EACH) {
  const state = {};
  for (let i = 0; i < count; i++)
    state[`model.layers.${i}.weight`] = tensor('F32', [each / 4], new Uint8Array(each).fill(i % 255));
  return state;
}

const big = join(args.dir, 'pt-v2-1GiB-200.pt');
if (!existsSync(big) || statSync(big).size < COUNT * EACH) await pytorch.save(big, stateDict(), { fsync: false });
warm(big);

const readAll = (t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).indexOf(0xff);

console.log(`# torch.save files (${machine()}, Python ${python}, median of ${runs} runs)`);

// --- 1. load ---------------------------------------------------------------------------
// Loading takes milliseconds: the best mean of batches on both sides (lib.mjs bestOf), after a warm-up.
const small = join(args.dir, 'pt-v2-5000-small.pt');
if (!existsSync(small)) await pytorch.save(small, stateDict(5000, 4096), { fsync: false });
warm(small);
const loadRuns = Math.max(runs, 15);
await pytorch.load(big);
const ckptLoad = await bestOf(() => pytorch.load(big), loadRuns, 5);
const ckptLoadSmall = await bestOf(() => pytorch.load(small), loadRuns, 2);
// Part of every load of the big file: the first view of a fresh 1 GiB mapping makes one external
// ArrayBuffer, and V8, counting its length as external memory, starts a mark-compact when the count
// passes its limit (in a loop of loads, nearly every time). The median over 40 mappings of the file.
const windowCost = median(
  Array.from({ length: 40 }, () => {
    const start = process.hrtime.bigint();
    const file = mapFile(big);
    file.view(0, 64);
    file.close();
    return Number(process.hrtime.bigint() - start) / 1e9;
  }),
);
const ckptLoadRead = await timeIt(async () => {
  const { state } = await pytorch.load(big);
  let x = 0;
  for (const t of Object.values(state)) x += readAll(t);
  return x;
}, runs);
const torchLoad = runPython(
  `
import json, sys, time, torch
def median(xs): return sorted(xs)[len(xs) // 2]
def best(fn, samples, batch):
    fn()
    out = float('inf')
    for _ in range(samples):
        t = time.perf_counter()
        for _ in range(batch): fn()
        out = min(out, (time.perf_counter() - t) / batch)
    return out
path, small, runs, load_runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
out = {
    'mmap': best(lambda: torch.load(path, weights_only=True, mmap=True), load_runs, 5),
    'mmap_small': best(lambda: torch.load(small, weights_only=True, mmap=True), load_runs, 2),
    'default': best(lambda: torch.load(path, weights_only=True), runs, 1),
}
for name, kwargs in [('mmap', {'mmap': True}), ('default', {})]:
    read = []
    for _ in range(runs):
        t = time.perf_counter(); sd = torch.load(path, weights_only=True, **kwargs)
        x = 0
        for v in sd.values(): x ^= int(v.view(torch.int32).sum())
        read.append(time.perf_counter() - t); del sd
    out[name + '_read'] = median(read)
print(json.dumps(out))
`,
  [big, small, String(runs), String(loadRuns)],
);
const loadRatio = torchLoad.mmap / ckptLoad;
const loadSmallRatio = torchLoad.mmap_small / ckptLoadSmall;
table(
  'Load a 1 GiB state dict of 200 tensors, and 5,000 tensors of 4 KiB',
  ['contender', 'time', 'ckpt is faster by'],
  [
    ['ckpt `load` (zero-copy views), 200 tensors', formatSeconds(ckptLoad), ''],
    [
      'of which: a fresh 1 GiB external buffer and the collection V8 starts for it (median)',
      formatSeconds(windowCost),
      '',
    ],
    [
      'torch.load(mmap=True, weights_only=True), 200 tensors (strongest)',
      formatSeconds(torchLoad.mmap),
      `${loadRatio.toFixed(2)}x`,
    ],
    [
      'torch.load(weights_only=True), 200 tensors',
      formatSeconds(torchLoad.default),
      `${(torchLoad.default / ckptLoad).toFixed(2)}x`,
    ],
    ['ckpt `load`, 5,000 tensors', formatSeconds(ckptLoadSmall), ''],
    [
      'torch.load(mmap=True, weights_only=True), 5,000 tensors',
      formatSeconds(torchLoad.mmap_small),
      `${loadSmallRatio.toFixed(2)}x`,
    ],
    ['ckpt `load` + read every byte', formatSeconds(ckptLoadRead), ''],
    [
      'torch.load(mmap=True) + read every byte',
      formatSeconds(torchLoad.mmap_read),
      `${(torchLoad.mmap_read / ckptLoadRead).toFixed(2)}x`,
    ],
    [
      'torch.load() + read every byte',
      formatSeconds(torchLoad.default_read),
      `${(torchLoad.default_read / ckptLoadRead).toFixed(2)}x`,
    ],
  ],
);

// --- 2. inspect -------------------------------------------------------------------------
const inspect = await timeIt(() => pytorch.inspect(big), Math.max(runs, 20));
table(
  'Inspect the 1 GiB file (names, dtypes, shapes; no tensor bytes)',
  ['contender', 'time', 'target'],
  [['ckpt `inspect`', formatSeconds(inspect), '<= 10 ms']],
);

// --- 3. save with digest ----------------------------------------------------------------------
const out = join(args.dir, 'pt-save-1GiB.pt');
const state = stateDict();
// Writes are noisy on a VM: ckpt and torch take turns, after one warm-up each. Each run writes a
// new file (the previous output removed first, as a checkpoint manager writes new files) and starts
// with no dirty pages (sync), so neither pays for the other's writeback; medians are compared.
const torchSaveScript = `
import json, os, sys, time, hashlib, torch
path, count, each, fsync = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == '1'
sd = {f'model.layers.{i}.weight': torch.full((each // 4,), float(i)) for i in range(count)}
if os.path.exists(path): os.remove(path)
os.sync()
t = time.perf_counter()
torch.save(sd, path)
with open(path, 'rb') as f:
    if fsync: os.fsync(f.fileno())
    digest = hashlib.file_digest(f, 'sha256').hexdigest()
print(json.dumps({'save_hash': time.perf_counter() - t}))
`;
const torchOnce = (fsync) =>
  runPython(torchSaveScript, [out, String(COUNT), String(EACH), fsync ? '1' : '0']).save_hash;
const ckptOnce = (fsync) => timeFreshWrite(out, () => pytorch.save(out, state, { fsync }));
await ckptOnce(false);
torchOnce(false);
const times = { ckpt: [], ckptSync: [], torch: [], torchSync: [] };
for (let i = 0; i < Math.max(runs, 5); i++) {
  times.ckpt.push(await ckptOnce(false));
  times.torch.push(torchOnce(false));
  times.ckptSync.push(await ckptOnce(true));
  times.torchSync.push(torchOnce(true));
}
const ckptSave = median(times.ckpt);
const ckptSaveSync = median(times.ckptSync);
const torchSave = { save_hash: median(times.torch), save_hash_fsync: median(times.torchSync) };
const floor = await ddFloor(out, 1024 * MiB, Math.max(runs, 5));
table(
  'Save 1 GiB (200 tensors) from memory with its SHA-256',
  ['contender', 'time', 'ckpt is faster by'],
  [
    ['ckpt `save`, digest in the same pass, no fsync', formatSeconds(ckptSave), ''],
    ['ckpt `save`, digest in the same pass, fsync (the default)', formatSeconds(ckptSaveSync), ''],
    [
      'torch.save then hashlib.file_digest, no fsync',
      formatSeconds(torchSave.save_hash),
      `${(torchSave.save_hash / ckptSave).toFixed(2)}x (against no fsync)`,
    ],
    [
      'torch.save, fsync, then hashlib.file_digest (strongest)',
      formatSeconds(torchSave.save_hash_fsync),
      `${(torchSave.save_hash_fsync / ckptSaveSync).toFixed(2)}x`,
    ],
    [
      '`dd` 1 GiB of zeros with `conv=fsync` (the write floor)',
      formatSeconds(floor),
      `${(ckptSaveSync / floor).toFixed(2)}x the floor`,
    ],
  ],
);

// --- 4. convert ----------------------------------------------------------------------------
const registry = new StorageRegistry([pytorch, safetensors]);
const converted = join(args.dir, 'pt-convert.safetensors');
const convertOnce = (fsync) =>
  timeFreshWrite(converted, () => convertCheckpoint(big, converted, { registry, save: { fsync } }));
await convertOnce(false);
const convertTimes = { plain: [], sync: [] };
for (let i = 0; i < Math.max(runs, 5); i++) {
  convertTimes.plain.push(await convertOnce(false));
  convertTimes.sync.push(await convertOnce(true));
}
const ckptConvert = median(convertTimes.plain);
const ckptConvertSync = median(convertTimes.sync);
const pyConvert = runPython(
  `
import json, os, sys, time, hashlib, torch
from safetensors.torch import save_file
def median(xs): return sorted(xs)[len(xs) // 2]
src, dst, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def once(mmap, fsync):
    if os.path.exists(dst): os.remove(dst)
    os.sync()
    t = time.perf_counter()
    save_file(torch.load(src, weights_only=True, mmap=mmap), dst, metadata={'format': 'pt'})
    if fsync:
        with open(dst, 'rb') as f:
            os.fsync(f.fileno())
            digest = hashlib.file_digest(f, 'sha256').hexdigest()
    return time.perf_counter() - t
once(True, True)
print(json.dumps({
    'convert': median([once(False, False) for _ in range(runs)]),
    'convert_mmap_fsync': median([once(True, True) for _ in range(max(runs, 5))]),
}))
`,
  [big, converted, String(runs)],
);
rmSync(converted, { force: true });
rmSync(out, { force: true });
table(
  'Convert the 1 GiB .pt to .safetensors',
  ['contender', 'time', 'ckpt is faster by'],
  [
    ['ckpt `convertCheckpoint` (output digest included), no fsync', formatSeconds(ckptConvert), ''],
    ['ckpt `convertCheckpoint` (output digest included), fsync (the default)', formatSeconds(ckptConvertSync), ''],
    [
      'torch.load + safetensors save_file (no digest, no fsync)',
      formatSeconds(pyConvert.convert),
      `${(pyConvert.convert / ckptConvert).toFixed(2)}x (against no fsync)`,
    ],
    [
      'torch.load(mmap=True) + save_file + fsync + hashlib (strongest)',
      formatSeconds(pyConvert.convert_mmap_fsync),
      `${(pyConvert.convert_mmap_fsync / ckptConvertSync).toFixed(2)}x`,
    ],
    [
      '`dd` 1 GiB with `conv=fsync` (the write floor)',
      formatSeconds(floor),
      `${(ckptConvertSync / floor).toFixed(2)}x the floor`,
    ],
  ],
);

const targetRows = [];
targetRows.push([
  `load 200 tensors >= 1.5x torch.load(mmap=True)`,
  `${loadRatio.toFixed(2)}x (${(torchLoad.mmap / (ckptLoad - windowCost)).toFixed(2)}x less V8's collection)`,
  loadRatio >= 1.5,
]);
targetRows.push([
  `load 5,000 tensors >= 1.5x torch.load(mmap=True)`,
  `${loadSmallRatio.toFixed(2)}x`,
  loadSmallRatio >= 1.5,
]);
targetRows.push([
  `load >= 3x torch.load()`,
  `${(torchLoad.default / ckptLoad).toFixed(2)}x`,
  torchLoad.default / ckptLoad >= 3,
]);
targetRows.push([`inspect <= 10 ms`, `${formatSeconds(inspect)}`, inspect <= 0.01]);
targetRows.push([
  `save + digest >= 1.5x torch.save + hashlib`,
  `${(torchSave.save_hash / ckptSave).toFixed(2)}x`,
  torchSave.save_hash / ckptSave >= 1.5,
]);
targetRows.push([
  `save + digest + fsync <= 1.25x the \`dd\` floor`,
  `${(ckptSaveSync / floor).toFixed(2)}x`,
  ckptSaveSync / floor <= 1.25,
]);
targetRows.push([
  `convert + digest + fsync <= 1.25x the \`dd\` floor`,
  `${(ckptConvertSync / floor).toFixed(2)}x`,
  ckptConvertSync / floor <= 1.25,
]);
targetRows.push([
  `convert + fsync >= 1x torch.load(mmap) + save_file + fsync + hashlib`,
  `${(pyConvert.convert_mmap_fsync / ckptConvertSync).toFixed(2)}x`,
  pyConvert.convert_mmap_fsync / ckptConvertSync >= 1,
]);
printTargets(targetRows);
