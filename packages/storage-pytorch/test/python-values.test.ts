import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromNumbers, type StateKey, type StateTree, Tuple } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import {
  asParameter,
  isParameter,
  pyFloat,
  pythonInfo,
  pytorch,
  requiresGrad,
  torchDevice,
  torchDtype,
  withPython,
} from '../src/index.js';
import { Op } from '../src/pickle/opcodes.js';

import { PickleBuilder, writeArchive } from './pickle-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'ckpt-pt-values-'));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

async function roundTrip(state: StateTree): Promise<StateTree> {
  const path = join(dir, `rt-${Math.random().toString(36).slice(2)}.pt`);
  await pytorch.save(path, state, { fsync: false });
  return (await pytorch.load(path)).state;
}

describe('Python values survive a round trip', () => {
  it('int keys, tuples, None, NaN and infinities, big ints, bytes, nesting', async () => {
    const state: StateTree = {
      int_keys: new Map<number, string>([
        [0, 'a'],
        [-5, 'b'],
        [1_000_000, 'c'],
      ]),
      tuple_keys: new Map([[Tuple.of<StateKey>(1, 'x'), 'pair']]),
      tuple: Tuple.of(0.9, 0.999),
      empty_tuple: Tuple.of(),
      long_tuple: Tuple.of(1, 2, 3, 4, 5),
      none: null,
      floats: [Number.NaN, Infinity, -Infinity, -0, 1.5],
      big: 2n ** 64n + 1n,
      negative_big: -(2n ** 70n),
      just_safe: Number.MAX_SAFE_INTEGER,
      bytes: new Uint8Array([0, 1, 254, 255]),
      set: new Set([1, 2, 3]),
      nested: { a: [{ b: Tuple.of([1], { c: null }) }] },
      bools: [true, false],
      text: 'ünïcödé ✓ \u0000',
    };
    const back = await roundTrip(state);
    expect(back).toStrictEqual(state);
    expect(Object.is((back.floats as number[])[3], -0)).toBe(true);
  });

  it('OrderedDict with _metadata, as model.state_dict() is', async () => {
    const { state } = await pytorch.load(fixture('mlp_state_dict.pt'));
    const back = await roundTrip(state);
    expect(back).toStrictEqual(state);
    expect(pythonInfo(back)).toEqual(pythonInfo(state));
    expect(pythonInfo(back)?.className).toBe('collections.OrderedDict');
  });

  it('a whole training checkpoint, every Python detail included', async () => {
    const { state } = await pytorch.load(fixture('training_checkpoint.pt'));
    const back = await roundTrip(state);
    expect(back).toStrictEqual(state);
    const groups = (back.optimizer_state_dict as StateTree).param_groups as StateTree[];
    expect(groups[0]?.betas).toBeInstanceOf(Tuple);
    expect((back.optimizer_state_dict as StateTree).state).toBeInstanceOf(Map);
  });

  it('whole floats stay floats: 2.0 read from a file is written back as 2.0', async () => {
    // {'lr': 2.0, 'steps': 2} as Python pickles it.
    const float = new Uint8Array(8);
    new DataView(float.buffer).setFloat64(0, 2, false);
    const pickle = new PickleBuilder()
      .proto()
      .op(Op.EMPTY_DICT)
      .op(Op.MARK)
      .string('lr')
      .op(Op.BINFLOAT, ...float)
      .string('steps')
      .int(2);
    const path = join(dir, 'whole-float.pt');
    writeArchive(path, { pickle: pickle.op(Op.SETITEMS).stop().bytes() });
    const { state } = await pytorch.load(path);
    expect(state).toEqual({ lr: 2, steps: 2 });
    expect(pythonInfo(state)?.floats).toEqual(new Set(['lr']));
    const back = await roundTrip(state);
    expect(pythonInfo(back)?.floats).toEqual(new Set(['lr']));
  });

  it('pyFloat forces a float for a whole number', async () => {
    const back = await roundTrip({ lr: pyFloat(1) as unknown as number, steps: 1 });
    expect(back).toEqual({ lr: 1, steps: 1 });
    expect(pythonInfo(back)?.floats).toEqual(new Set(['lr']));
  });

  it('parameters and requires_grad', async () => {
    const w = fromNumbers('F32', [1, 2]);
    const back = await roundTrip({ weight: asParameter(w, true), frozen: asParameter(w, false), plain: w });
    expect(isParameter(back.weight as never)).toBe(true);
    expect(requiresGrad(back.weight as never)).toBe(true);
    expect(isParameter(back.frozen as never)).toBe(true);
    expect(requiresGrad(back.frozen as never)).toBe(false);
    expect(isParameter(back.plain as never)).toBe(false);
  });

  it('torch.device, torch.dtype, torch.Size and complex numbers', async () => {
    const state: StateTree = {
      device: torchDevice('cuda', 0),
      dtype: torchDtype('bfloat16'),
      size: withPython(Tuple.of(2, 3), { className: 'torch.Size' }),
      z: withPython({ real: 1.5, imag: -2 }, { className: 'builtins.complex' }),
    };
    const back = await roundTrip(state);
    expect(back).toStrictEqual(state);
    expect(pythonInfo(back.size)?.className).toBe('torch.Size');
    expect(pythonInfo(back.device)?.className).toBe('torch.device');
  });

  it('tied tensors stay tied and views of one buffer share one storage', async () => {
    const buffer = new Float32Array([1, 2, 3, 4, 5, 6]);
    const whole = fromNumbers('F32', [0]); // replaced below
    void whole;
    const base = { dtype: 'F32' as const, shape: [6], data: new Uint8Array(buffer.buffer) };
    const tail = { dtype: 'F32' as const, shape: [2], data: new Uint8Array(buffer.buffer, 16, 8) };
    const back = await roundTrip({ base, again: base, tail });
    expect(back.again).toBe(back.base);
    expect(Array.from(new Float32Array((back.tail as typeof tail).data.slice().buffer))).toEqual([5, 6]);
  });

  it('refuses what torch could not load, saying why', async () => {
    await expect(roundTrip({ f: (() => 1) as never })).rejects.toMatchObject({ code: 'CKPT_INVALID_ARGUMENT' });
    const ints = fromNumbers('I32', [1]);
    await expect(roundTrip({ p: asParameter(ints, true) })).rejects.toThrow(/cannot require gradients/);
    const cycle: StateTree = { list: [] };
    (cycle.list as unknown[]).push(cycle.list);
    await expect(roundTrip(cycle)).rejects.toThrow(/cycle/);
  });
});
