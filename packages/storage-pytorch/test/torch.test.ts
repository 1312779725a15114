import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  byteLengthOf,
  type DType,
  dtypeInfo,
  flattenTensors,
  type StateTree,
  type StateValue,
  type Tensor,
  Tuple,
  tensor,
} from '@ckpt/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { requirePythonModules, runPythonFile, skipPython } from '../../../tools/testing/python.js';
import { asParameter, pyFloat, pythonInfo, pytorch, SAVE_DTYPES, withPython } from '../src/index.js';
import { expectMatchesManifest } from './manifest.js';

// Compatibility with the real torch, both ways: torch loads what ckpt writes
// (weights_only=True, and mmap=True), torch re-saves it, ckpt reads it again.
const script = fileURLToPath(new URL('./python/torch_compat.py', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ckpt-pt-torch-'));
const torchDtypes = SAVE_DTYPES.filter((d) => d !== 'F4'); // float4_e2m1fn_x2 cannot be viewed from bytes in torch 2.13

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomTensor(rng: () => number): Tensor {
  const dtype = torchDtypes[Math.floor(rng() * torchDtypes.length)] as DType;
  const shape = Array.from({ length: Math.floor(rng() * 4) }, () => Math.floor(rng() * 5));
  let bytes = new Uint8Array(randomBytes(byteLengthOf(dtype, shape)));
  if (dtype === 'BOOL') bytes = bytes.map((b) => b & 1);
  return tensor(dtype, shape, bytes);
}

/** A random training-state-like tree: nesting, int-keyed Maps, tuples, every kind of value, tied tensors, parameters. */
function randomTree(seed: number): StateTree {
  const rng = seeded(seed);
  const tensors = Array.from({ length: 1 + Math.floor(rng() * 6) }, () => randomTensor(rng));
  const pick = () => tensors[Math.floor(rng() * tensors.length)] as Tensor;
  const leaf = (depth: number): StateValue => {
    const r = Math.floor(rng() * 14);
    switch (r) {
      case 0:
        return pick();
      case 1: {
        // torch lets only floating-point tensors require gradients.
        const t = pick();
        return asParameter(t, ['float', 'complex'].includes(dtypeInfo(t.dtype).kind) && rng() < 0.5);
      }
      case 2:
        return Math.floor(rng() * 1000) - 500;
      case 3:
        return rng() * 10 - 5;
      case 4:
        return [Number.NaN, Infinity, -Infinity, -0][Math.floor(rng() * 4)] as number;
      case 5:
        return 2n ** 60n + BigInt(Math.floor(rng() * 1000));
      case 6:
        return `text ${seed} ü ✓`;
      case 7:
        return rng() < 0.5;
      case 8:
        return null;
      case 9:
        return new Uint8Array(randomBytes(5));
      case 10:
        return depth > 3 ? 1 : Tuple.of(leaf(depth + 1), leaf(depth + 1));
      case 11:
        return depth > 3
          ? 2
          : new Map<number, StateValue>([
              [0, leaf(depth + 1)],
              [7, leaf(depth + 1)],
            ]);
      case 12:
        return depth > 3 ? 3 : [leaf(depth + 1), leaf(depth + 1), leaf(depth + 1)];
      default:
        return depth > 3 ? 4 : { [`k${Math.floor(rng() * 100)}`]: leaf(depth + 1), nested: leaf(depth + 1) };
    }
  };
  const state: StateTree = { model: Object.fromEntries(tensors.map((t, i) => [`layer${i}.weight`, t])) };
  for (let i = 0; i < 6; i++) state[`field${i}`] = leaf(0);
  return state;
}

interface Description {
  plain: unknown;
  mmap: unknown;
}

describe.skipIf(skipPython)('against torch 2.13', () => {
  beforeAll(() => requirePythonModules(['torch']));

  it('loads every dtype ckpt writes, with weights_only=True and with mmap=True', async () => {
    const state: StateTree = Object.fromEntries(torchDtypes.map((d, i) => [d, randomTensor(seeded(i))]));
    const path = join(dir, 'every-dtype.pt');
    await pytorch.save(path, state);
    const seen = JSON.parse(runPythonFile(script, ['describe'], JSON.stringify([path])).stdout) as Record<
      string,
      Description
    >;
    expectMatchesManifest(state, (seen[path] as Description).plain);
    expectMatchesManifest(state, (seen[path] as Description).mmap);
  });

  it('loads a full training checkpoint: OrderedDict state_dict, int-keyed optimizer state, tuple betas, whole floats', async () => {
    const w = tensor('F32', [2, 2], new Uint8Array(16).fill(1));
    const model = withPython(
      { 'fc.weight': asParameter(w), 'fc.bias': tensor('F32', [2], new Uint8Array(8)) },
      { className: 'collections.OrderedDict' },
    );
    const state: StateTree = {
      model_state_dict: model,
      optimizer_state_dict: {
        state: new Map([[0, { step: tensor('F32', [], new Uint8Array(4)), exp_avg: w }]]),
        param_groups: [
          { lr: 0.001, betas: Tuple.of(0.9, 0.999), weight_decay: pyFloat(0) as unknown as number, params: [0, 1] },
        ],
      },
      epoch: 3,
      metrics: { val_loss: Number.NaN },
    };
    const path = join(dir, 'training.pt');
    await pytorch.save(path, state);
    const raw = runPythonFile(script, ['describe'], JSON.stringify([path])).stdout;
    expectMatchesManifest(state, (JSON.parse(raw)[path] as Description).plain);
    // Python printed the float as a float: weight_decay was saved as 0.0, not 0, and epoch as an int.
    expect(raw).toMatch(/"weight_decay", 0\.0\]/);
    expect(raw).toMatch(/"epoch", 3\]/);
  });

  it('round-trips many random trees through torch: load, compare, re-save, read again', async () => {
    const cases = Array.from({ length: 40 }, (_, i) => ({
      seed: 500 + i,
      path: join(dir, `random-${i}.pt`),
      resaved: join(dir, `random-${i}.resaved.pt`),
    }));
    const trees = new Map<string, StateTree>();
    for (const c of cases) {
      const tree = randomTree(c.seed);
      trees.set(c.path, tree);
      await pytorch.save(c.path, tree, { fsync: false });
    }
    const seen = JSON.parse(
      runPythonFile(script, ['describe'], JSON.stringify(cases.map((c) => c.path))).stdout,
    ) as Record<string, Description>;
    for (const c of cases) {
      const tree = trees.get(c.path) as StateTree;
      expectMatchesManifest(tree, (seen[c.path] as Description).plain, `seed ${c.seed}`);
      expectMatchesManifest(tree, (seen[c.path] as Description).mmap, `seed ${c.seed} (mmap)`);
    }
    runPythonFile(script, ['resave'], JSON.stringify(cases.map((c) => [c.path, c.resaved])));
    for (const c of cases) {
      const again = (await pytorch.load(c.resaved)).state;
      expect(again, `seed ${c.seed}`).toStrictEqual(trees.get(c.path));
    }
  });

  it('reads what torch writes: random dtypes, shapes and non-contiguous views', async () => {
    const jobs = Array.from({ length: 30 }, (_, i) => ({
      path: join(dir, `torch-${i + 1}.pt`),
      seed: i + 1,
      tensors: 8,
    }));
    const descriptions = JSON.parse(runPythonFile(script, ['save-random'], JSON.stringify(jobs)).stdout);
    for (const { path, seed } of jobs) {
      const description = descriptions[path];
      const { state } = await pytorch.load(path);
      expectMatchesManifest(state, description, `seed ${seed}`);
      const inspection = await pytorch.inspect(path);
      expect(inspection.tensors.map((t) => t.name)).toEqual(flattenTensors(state).map(([n]) => n));
    }
  });
});

describe.skipIf(skipPython)('globals a user allows, as torch.serialization.add_safe_globals', () => {
  beforeAll(() => requirePythonModules(['torch', 'numpy']));
  const path = join(dir, 'extras.pt');

  it('are refused by default, naming the first', async () => {
    runPythonFile(script, ['save-extras'], JSON.stringify({ path }));
    await expect(pytorch.load(path)).rejects.toMatchObject({
      code: 'CKPT_UNSAFE_PICKLE',
      global: 'argparse.Namespace',
    });
  });

  it('argparse.Namespace, numpy arrays, rng states and scalars, and Lightning AttributeDict read once allowed', async () => {
    const { state } = await pytorch.load(path, { allowGlobals: ['argparse', 'numpy', 'lightning'] });
    expect(state.args).toEqual({ lr: 0.1, layers: [4, 8], name: 'mlp' });
    expect(pythonInfo(state.args)?.className).toBe('argparse.Namespace');
    const weights = state.weights as Tensor;
    expect(weights).toMatchObject({ dtype: 'F32', shape: [2, 3] });
    expect(Array.from(new Float32Array(weights.data.slice().buffer))).toEqual([0, 1, 2, 3, 4, 5]);
    // A Fortran-ordered array comes out in C order.
    expect(Array.from(new BigInt64Array((state.fortran as Tensor).data.slice().buffer))).toEqual([
      0n,
      1n,
      2n,
      3n,
      4n,
      5n,
    ]);
    const rng = state.rng as Tuple;
    expect(rng[0]).toBe('MT19937');
    expect((rng[1] as Tensor).shape).toEqual([624]);
    expect(state.scalar).toBe(2.5);
    expect(state.hparams).toEqual({ lr: 0.01, batch_size: 32 });
    expect(pythonInfo(state.hparams)?.className).toBe('lightning.fabric.utilities.data.AttributeDict');
  });
});
