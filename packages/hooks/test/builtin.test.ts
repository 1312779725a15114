import { describe, expect, it } from 'vitest';
import {
  type CheckpointEvents,
  earlyStoppingHook,
  HookManager,
  hasNonFinite,
  loggerHook,
  validationHook,
} from '../src/index.js';

const f32 = (...values: number[]) => ({
  dtype: 'F32',
  shape: [values.length],
  data: new Uint8Array(new Float32Array(values).buffer),
});

function saveContext(metrics: Record<string, number>, state: unknown = {}) {
  return { experiment: 'e', model: 'm', epoch: 1, step: 10, metrics, tags: [], state, metadata: {}, path: '/tmp/x' };
}

describe('loggerHook', () => {
  it('logs one line per event with its key facts', async () => {
    const lines: string[] = [];
    const { hook, events } = loggerHook({ log: (l) => lines.push(l) });
    const hooks = new HookManager<CheckpointEvents>().register('log', hook, events);
    await hooks.emit('checkpointSkipped', {
      experiment: 'e',
      epoch: 3,
      step: null,
      metrics: {},
      reason: 'not every 5 epochs',
    });
    expect(lines).toEqual(['[ckpt] checkpointSkipped experiment=e epoch=3 reason=not every 5 epochs']);
  });
});

describe('validationHook', () => {
  const run = async (
    options: Parameters<typeof validationHook>[0],
    metrics: Record<string, number>,
    state?: unknown,
  ) => {
    const { hook, events } = validationHook(options);
    const hooks = new HookManager<CheckpointEvents>().register('validate', hook, events);
    return (await hooks.emit('beforeSave', saveContext(metrics, state))).vetoed?.reason;
  };

  it('refuses NaN and infinite metrics', async () => {
    expect(await run({}, { loss: Number.NaN })).toBe('metric loss is NaN');
    expect(await run({ monitor: 'val_loss' }, { val_loss: Infinity, other: Number.NaN })).toBe(
      'metric val_loss is Infinity',
    );
    expect(await run({ monitor: 'val_loss' }, {})).toBe('metric val_loss is missing');
    expect(await run({}, { loss: 0.5 })).toBeUndefined();
  });

  it('refuses crossed thresholds', async () => {
    expect(await run({ thresholds: { loss: { max: 10 } } }, { loss: 12 })).toBe(
      'metric loss is 12, above the maximum 10',
    );
    expect(await run({ thresholds: { acc: { min: 0.1 } } }, { acc: 0.05 })).toBe(
      'metric acc is 0.05, below the minimum 0.1',
    );
  });

  it('refuses NaN or infinity in any float tensor of the state, naming it', async () => {
    const state = { model: { 'fc.weight': f32(1, 2), 'fc.bias': f32(0, Number.NaN) }, step: new Map([[0, f32(1)]]) };
    expect(await run({}, {}, state)).toBe('tensor model.fc.bias holds NaN or infinity');
    expect(await run({ checkTensors: false }, {}, state)).toBeUndefined();
  });

  it('reads the bits of every float type', () => {
    const bf16 = (bits: number[]) => ({ dtype: 'BF16', data: new Uint8Array(new Uint16Array(bits).buffer) });
    expect(hasNonFinite(bf16([0x3f80, 0x7f80]))).toBe(true); // 1, +inf
    expect(hasNonFinite(bf16([0x3f80, 0xc000]))).toBe(false);
    expect(hasNonFinite({ dtype: 'F16', data: new Uint8Array(new Uint16Array([0x7e00]).buffer) })).toBe(true);
    expect(hasNonFinite({ dtype: 'F8_E4M3', data: Uint8Array.from([0x7e, 0xff]) })).toBe(true);
    expect(hasNonFinite({ dtype: 'F8_E4M3', data: Uint8Array.from([0x7e]) })).toBe(false);
    expect(hasNonFinite({ dtype: 'F8_E5M2FNUZ', data: Uint8Array.from([0x80]) })).toBe(true);
    expect(hasNonFinite({ dtype: 'I32', data: new Uint8Array(8).fill(0xff) })).toBe(false);
    const misaligned = new Uint8Array(9);
    new DataView(misaligned.buffer).setFloat64(1, Number.NaN, true);
    expect(hasNonFinite({ dtype: 'F64', data: misaligned.subarray(1) })).toBe(true);
  });
});

describe('earlyStoppingHook', () => {
  it('signals once after `patience` checkpoints without improvement', async () => {
    let stops = 0;
    const early = earlyStoppingHook({ monitor: 'val_loss', patience: 2, minDelta: 0.01, onStop: () => stops++ });
    const hooks = new HookManager<CheckpointEvents>().register('early', early.hook, early.events);
    const record = (epoch: number, val_loss: number) => ({
      id: String(epoch),
      path: 'p',
      epoch,
      metrics: { val_loss },
      tags: [],
    });
    for (const [epoch, loss] of [
      [1, 1.0],
      [2, 0.8],
      [3, 0.795],
      [4, 0.9],
    ] as const) {
      await hooks.emit('afterSave', { experiment: 'e', record: record(epoch, loss), durationMs: 1 });
    }
    expect(early.state).toMatchObject({ best: 0.8, bestEpoch: 2, since: 2, shouldStop: true });
    await hooks.emit('checkpointSkipped', { experiment: 'e', epoch: 5, metrics: { val_loss: 0.85 }, reason: 'x' });
    expect(stops).toBe(1);
  });

  it('follows max mode', async () => {
    const early = earlyStoppingHook({ monitor: 'acc', mode: 'max', patience: 1 });
    const hooks = new HookManager<CheckpointEvents>().register('early', early.hook, early.events);
    await hooks.emit('checkpointSkipped', { experiment: 'e', epoch: 1, metrics: { acc: 0.5 }, reason: 'x' });
    await hooks.emit('checkpointSkipped', { experiment: 'e', epoch: 2, metrics: { acc: 0.6 }, reason: 'x' });
    expect(early.state.shouldStop).toBe(false);
    await hooks.emit('checkpointSkipped', { experiment: 'e', epoch: 3, metrics: { acc: 0.55 }, reason: 'x' });
    expect(early.state.shouldStop).toBe(true);
  });
});
