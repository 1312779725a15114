import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isCkptError, StorageRegistry } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import { pythonInfo, pytorch } from '../src/index.js';
import { Op } from '../src/pickle/opcodes.js';
import { expectMatchesManifest, manifestOf } from './manifest.js';
import { PickleBuilder, writeArchive } from './pickle-builder.js';

// The forms in which torch's weights_only unpickler accepts an OrderedDict or a Counter (it calls the real
// class), and the ones it refuses. Older torch wrote state dicts as REDUCE over a list of [key, value] lists.
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ckpt-pt-dicts-'));
let counter = 0;

/** A torch archive whose data.pkl is `GLOBAL cls` + `args` (pushed by `push`, then TUPLE) + REDUCE. */
async function loadReduce(cls: string, push: (p: PickleBuilder) => void) {
  const p = new PickleBuilder().proto().global('collections', cls).op(Op.MARK);
  push(p);
  p.op(Op.TUPLE).op(Op.REDUCE).stop();
  const path = join(dir, `dict-${counter++}.pt`);
  writeArchive(path, { pickle: p.bytes() });
  return (await pytorch.load(path)).state as Record<string, unknown>;
}

const list = (p: PickleBuilder, items: Array<(p: PickleBuilder) => void>) => {
  p.op(Op.EMPTY_LIST).op(Op.MARK);
  for (const item of items) item(p);
  p.op(Op.APPENDS);
};
const pairList = (key: string, value: number) => (p: PickleBuilder) =>
  list(p, [(q) => q.string(key), (q) => q.int(value)]);
const pairTuple = (key: string, value: number) => (p: PickleBuilder) => p.string(key).int(value).tuple(2);

describe('OrderedDict and Counter built by REDUCE', () => {
  it('reads a real legacy torch file whose state dict is a list of [key, value] lists, as torch does', async () => {
    const path = fixture('legacy_list_pairs.pt');
    const { state } = await pytorch.load(path);
    expectMatchesManifest(state, manifestOf(path).content);
    expect(pythonInfo(state)?.className).toBe('collections.OrderedDict');
  });

  it('takes lists of [key, value] lists, tuples of pairs, two-character strings, a dict, and no argument', async () => {
    expect(await loadReduce('OrderedDict', (p) => list(p, [pairList('a', 1), pairList('b', 2)]))).toEqual({
      a: 1,
      b: 2,
    });
    const tupleOfPairs = (p: PickleBuilder) => {
      p.op(Op.MARK);
      pairTuple('x', 3)(p);
      pairTuple('y', 4)(p);
      p.op(Op.TUPLE);
    };
    expect(await loadReduce('OrderedDict', tupleOfPairs)).toEqual({ x: 3, y: 4 });
    // OrderedDict(['ab']) == {'a': 'b'} in Python: a string of two characters unpacks to a pair.
    expect(await loadReduce('OrderedDict', (p) => list(p, [(q) => q.string('ab')]))).toEqual({ a: 'b' });
    expect(await loadReduce('OrderedDict', (p) => p.op(Op.EMPTY_DICT).string('k').int(5).op(Op.SETITEM))).toEqual({
      k: 5,
    });
    expect(await loadReduce('OrderedDict', () => {})).toEqual({});
  });

  it('counts the items of a Counter built from an iterable', async () => {
    const counted = await loadReduce('Counter', (p) =>
      list(p, [(q) => q.string('a'), (q) => q.string('b'), (q) => q.string('a')]),
    );
    expect(counted).toEqual({ a: 2, b: 1 });
    expect(pythonInfo(counted)?.className).toBe('collections.Counter');
  });

  it('refuses what Python refuses: items that are not pairs, more than one argument, a number', async () => {
    const refused = async (cls: string, push: (p: PickleBuilder) => void, message: RegExp) => {
      const error = await loadReduce(cls, push).catch((e: unknown) => e);
      expect(isCkptError(error, 'CKPT_FORMAT'), String(error)).toBe(true);
      expect((error as Error).message).toMatch(message);
    };
    const triple = (p: PickleBuilder) => list(p, [(q) => q.string('a'), (q) => q.int(1), (q) => q.int(2)]);
    await refused('OrderedDict', (p) => list(p, [triple]), /other than \(key, value\) pairs/);
    await refused('OrderedDict', (p) => list(p, [(q) => q.string('abc')]), /other than \(key, value\) pairs/);
    await refused('OrderedDict', (p) => list(p, [(q) => q.int(7)]), /other than \(key, value\) pairs/);
    await refused('OrderedDict', (p) => p.int(7), /not iterable/);
    await refused('OrderedDict', (p) => p.op(Op.EMPTY_LIST).op(Op.EMPTY_LIST), /at most one argument/);
    await refused('Counter', (p) => p.int(7), /not iterable/);
    // A list is not a dict key, in a Counter as anywhere.
    await refused('Counter', (p) => list(p, [(q) => q.op(Op.EMPTY_LIST)]), /./);
  });
});

describe('TorchScript archives', () => {
  it('are recognised by content and refused with CKPT_PROGRAM, whatever their extension', async () => {
    const path = fixture('torchscript_linear.pt');
    const jit = join(dir, 'model.jit');
    copyFileSync(path, jit);
    const registry = new StorageRegistry([pytorch]);
    for (const file of [path, jit]) {
      expect((await registry.resolve(file)).name).toBe('pytorch');
      const error = await pytorch.load(file).catch((e: unknown) => e);
      expect(isCkptError(error, 'CKPT_PROGRAM'), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/TorchScript/);
      await expect(pytorch.inspect(file)).rejects.toMatchObject({ code: 'CKPT_PROGRAM' });
    }
  });
});
