#!/usr/bin/env node
// torch.save files: @ckpt/storage-pytorch against torch itself, in one run.
//
//   node tools/bench/pytorch.mjs [--runs 3] [--dir /tmp/ckpt-bench]
//
// 1. Load a 1 GiB state dict of 200 tensors: ckpt (views) against torch.load(mmap=True)
//    and the default torch.load, both weights_only=True; then with every byte read.
// 2. Inspect that file.
// 3. Save 1 GiB with its SHA-256 against torch.save followed by hashlib.
// 4. Convert the 1 GiB .pt to .safetensors against torch.load + safetensors' save_file.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { convertCheckpoint, StorageRegistry, tensor } from '@ckpt/core';
import { pytorch } from '@ckpt/storage-pytorch';
import { safetensors } from '@ckpt/storage-safetensors';
import { formatSeconds, machine, median, python, runPython, table, timeIt, verdict, warm } from './lib.mjs';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, dir: { type: 'string', default: '/tmp/ckpt-bench' } },
});
const runs = Number(args.runs);
mkdirSync(args.dir, { recursive: true });

const COUNT = 200;
const EACH = (1 << 30) / COUNT - (((1 << 30) / COUNT) % 4096);

/** 200 F32 tensors, about 1 GiB; tensor i holds the byte i % 255, never 0xff. */
function stateDict() {
  const state = {};
  for (let i = 0; i < COUNT; i++)
    state[`model.layers.${i}.weight`] = tensor('F32', [EACH / 4], new Uint8Array(EACH).fill(i % 255));
  return state;
}

const big = join(args.dir, 'pt-v2-1GiB-200.pt');
if (!existsSync(big) || statSync(big).size < COUNT * EACH) await pytorch.save(big, stateDict(), { fsync: false });
warm(big);

const readAll = (t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).indexOf(0xff);

console.log(`# torch.save files (${machine()}, Python ${python}, median of ${runs} runs)`);

// --- 1. load ---------------------------------------------------------------------------
// Loading takes milliseconds: warm up, then take the median of more runs.
const loadRuns = Math.max(runs, 15);
await pytorch.load(big);
const ckptLoad = await timeIt(() => pytorch.load(big), loadRuns);
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
path, runs, load_runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = {}
for name, kwargs in [('mmap', {'mmap': True}), ('default', {})]:
    only, read = [], []
    torch.load(path, weights_only=True, **kwargs)
    for _ in range(load_runs if name == 'mmap' else runs):
        t = time.perf_counter(); sd = torch.load(path, weights_only=True, **kwargs); only.append(time.perf_counter() - t); del sd
    for _ in range(runs):
        t = time.perf_counter(); sd = torch.load(path, weights_only=True, **kwargs)
        x = 0
        for v in sd.values(): x ^= int(v.view(torch.int32).sum())
        read.append(time.perf_counter() - t); del sd
    out[name] = median(only); out[name + '_read'] = median(read)
print(json.dumps(out))
`,
  [big, String(runs), String(loadRuns)],
);
table(
  'Load a 1 GiB state dict of 200 tensors',
  ['contender', 'time', 'ckpt is faster by'],
  [
    ['ckpt `load` (zero-copy views)', formatSeconds(ckptLoad), ''],
    [
      'torch.load(mmap=True, weights_only=True)',
      formatSeconds(torchLoad.mmap),
      `${(torchLoad.mmap / ckptLoad).toFixed(2)}x`,
    ],
    [
      'torch.load(weights_only=True)',
      formatSeconds(torchLoad.default),
      `${(torchLoad.default / ckptLoad).toFixed(2)}x`,
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
path, count, each = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sd = {f'model.layers.{i}.weight': torch.full((each // 4,), float(i)) for i in range(count)}
if os.path.exists(path): os.remove(path)
os.sync()
t = time.perf_counter()
torch.save(sd, path)
with open(path, 'rb') as f: digest = hashlib.file_digest(f, 'sha256').hexdigest()
print(json.dumps({'save_hash': time.perf_counter() - t}))
`;
const torchOnce = () => runPython(torchSaveScript, [out, String(COUNT), String(EACH)]).save_hash;
const ckptOnce = () => {
  rmSync(out, { force: true });
  execFileSync('sync');
  return timeIt(() => pytorch.save(out, state, { fsync: false }), 1);
};
await ckptOnce();
torchOnce();
const ckptTimes = [];
const torchTimes = [];
for (let i = 0; i < Math.max(runs, 5); i++) {
  ckptTimes.push(await ckptOnce());
  torchTimes.push(torchOnce());
}
rmSync(out, { force: true });
const ckptSave = median(ckptTimes);
const torchSave = { save_hash: median(torchTimes) };
table(
  'Save 1 GiB (200 tensors) from memory with its SHA-256',
  ['contender', 'time', 'ckpt is faster by'],
  [
    ['ckpt `save`, digest in the same pass, no fsync', formatSeconds(ckptSave), ''],
    [
      'torch.save then hashlib.file_digest',
      formatSeconds(torchSave.save_hash),
      `${(torchSave.save_hash / ckptSave).toFixed(2)}x`,
    ],
  ],
);

// --- 4. convert ----------------------------------------------------------------------------
const registry = new StorageRegistry([pytorch, safetensors]);
const converted = join(args.dir, 'pt-convert.safetensors');
const ckptConvert = await timeIt(() => convertCheckpoint(big, converted, { registry, save: { fsync: false } }), runs);
const pyConvert = runPython(
  `
import json, sys, time, torch
from safetensors.torch import save_file
def median(xs): return sorted(xs)[len(xs) // 2]
src, dst, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for _ in range(runs):
    t = time.perf_counter(); save_file(torch.load(src, weights_only=True), dst, metadata={'format': 'pt'}); times.append(time.perf_counter() - t)
print(json.dumps({'convert': median(times)}))
`,
  [big, converted, String(runs)],
);
rmSync(converted, { force: true });
table(
  'Convert the 1 GiB .pt to .safetensors',
  ['contender', 'time', 'ckpt is faster by'],
  [
    ['ckpt `convertCheckpoint` (output digest included)', formatSeconds(ckptConvert), ''],
    [
      'torch.load + safetensors save_file (no digest)',
      formatSeconds(pyConvert.convert),
      `${(pyConvert.convert / ckptConvert).toFixed(2)}x`,
    ],
  ],
);

console.log('\n### Targets\n');
console.log('| target | measured | |');
console.log('|---|---:|---|');
console.log(
  `| load >= 1x torch.load(mmap=True) | ${(torchLoad.mmap / ckptLoad).toFixed(2)}x | ${verdict(torchLoad.mmap / ckptLoad >= 1)} |`,
);
console.log(
  `| load >= 3x torch.load() | ${(torchLoad.default / ckptLoad).toFixed(2)}x | ${verdict(torchLoad.default / ckptLoad >= 3)} |`,
);
console.log(`| inspect <= 10 ms | ${formatSeconds(inspect)} | ${verdict(inspect <= 0.01)} |`);
console.log(
  `| save + digest >= 1.5x torch.save + hashlib | ${(torchSave.save_hash / ckptSave).toFixed(2)}x | ${verdict(torchSave.save_hash / ckptSave >= 1.5)} |`,
);
