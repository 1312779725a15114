import { describe, expect, it } from 'vitest';
import {
  assertStateTree,
  flattenTensors,
  fromNumbers,
  isFlatTensorRecord,
  joinTree,
  mapTensors,
  type StateTree,
  splitTree,
  type Tensor,
  Tuple,
  unflatten,
  zeros,
} from '../src/index.js';

const w = fromNumbers('F32', [1, 2]);
const b = fromNumbers('F32', [3]);

function trainingState(): StateTree {
  return {
    model: { 'fc1.weight': w, 'fc1.bias': b },
    optimizer: {
      state: new Map<number, StateTree>([[0, { step: 3n, exp_avg: zeros('F32', [2]) }]]),
      param_groups: [{ lr: 1e-3, betas: Tuple.of(0.9, 0.999), eps: 1e-8, params: [0, 1] }],
    },
    epoch: 3,
    metrics: { loss: Number.NaN, best: -Infinity, neg_zero: -0 },
    note: null,
    missing: undefined,
    raw: new Uint8Array([1, 2, 3]),
    $weird: { $tensor: 'not a tensor reference' },
  };
}

describe('flattening', () => {
  it('names every tensor by its dotted path, in order', () => {
    const names = flattenTensors(trainingState()).map(([name]) => name);
    expect(names).toEqual(['model.fc1.weight', 'model.fc1.bias', 'optimizer.state.0.exp_avg']);
  });

  it('refuses two tensors with one path', () => {
    expect(() => flattenTensors({ 'a.b': w, a: { b: b } })).toThrow(expect.objectContaining({ code: 'CKPT_CONFLICT' }));
  });

  it('unflattens dotted paths into nested records', () => {
    expect(
      unflatten([
        ['a.b', 1],
        ['a.c', 2],
        ['d', 3],
      ]),
    ).toEqual({ a: { b: 1, c: 2 }, d: 3 });
    expect(() =>
      unflatten([
        ['a', 1],
        ['a.b', 2],
      ]),
    ).toThrow(/runs through a leaf/);
    expect(() =>
      unflatten([
        ['a', 1],
        ['a', 2],
      ]),
    ).toThrow(/set twice/);
  });

  it('tells a plain state dict apart', () => {
    expect(isFlatTensorRecord({ 'fc.weight': w })).toBe(true);
    expect(isFlatTensorRecord(trainingState())).toBe(false);
  });

  it('maps tensors, keeping everything else', () => {
    const doubled = mapTensors(trainingState(), (t) => fromNumbers('F64', [t.data.length])) as StateTree;
    expect((doubled.model as Record<string, Tensor>)['fc1.weight']?.dtype).toBe('F64');
    expect(doubled.epoch).toBe(3);
    const group = ((doubled.optimizer as StateTree).param_groups as StateTree[])[0];
    expect(group?.betas).toBeInstanceOf(Tuple);
  });
});

describe('structure', () => {
  it('round-trips every kind of value through JSON', () => {
    const tree = trainingState();
    const { tensors, structure } = splitTree(tree);
    const byName = new Map(tensors);
    const back = joinTree(JSON.parse(JSON.stringify(structure)), (name) => byName.get(name));
    expect(back).toEqual(tree);
    const metrics = back.metrics as Record<string, number>;
    expect(Object.is(metrics.neg_zero, -0)).toBe(true);
    expect(((back.optimizer as StateTree).state as Map<unknown, unknown>).has(0)).toBe(true);
    const group = ((back.optimizer as StateTree).param_groups as StateTree[])[0];
    expect(group?.betas).toBeInstanceOf(Tuple);
    expect('missing' in back).toBe(true);
  });

  it('names the tensor a structure refers to but the file lacks', () => {
    const { structure } = splitTree({ a: w });
    expect(() => joinTree(structure, () => undefined)).toThrow(expect.objectContaining({ code: 'CKPT_FORMAT' }));
  });

  it('refuses malformed structures', () => {
    expect(() => joinTree({ $float: 'lots' }, () => undefined)).toThrow(/malformed/);
    expect(() => joinTree({ a: { $bigint: '1e3' } }, () => undefined)).toThrow(/malformed/);
    expect(() => joinTree([1, 2], () => undefined)).toThrow(/not a record/);
  });
});

describe('assertStateTree', () => {
  it('accepts what a checkpoint can hold and names what it cannot', () => {
    assertStateTree(trainingState());
    expect(() => assertStateTree({ model: { f: () => 1 } })).toThrow(/state\.model\.f cannot be stored/);
    expect(() => assertStateTree({ when: new Date() })).toThrow(/state\.when/);
    expect(() => assertStateTree([w])).toThrow(/plain object/);
  });
});
