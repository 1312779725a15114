import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CheckpointEvents, HookManager, validationHook } from '../../hooks/src/index.js'; // the hook manager, over core's event contract (not a package dependency: hooks depends on core)
import {
  type CheckpointRecord,
  ConflictError,
  fromTypedArray,
  type Tensor,
  type Tracker,
  tensorsEqual,
  toFloat32Array,
  VetoedError,
} from '../src/index.js';
import { openManager, scratch, testBackend, uniqueName, weights } from './support/helpers.js';

const root = scratch();

describe('list, tags, protection, deletion, summary', () => {
  it('filters by tag, epoch range, metric bounds and status; sorts by any key', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    const losses = [0.5, 0.2, 0.9, 0.4];
    for (const [epoch, val_loss] of losses.entries()) {
      await manager.save({
        state: {},
        epoch,
        step: 100 - epoch,
        metrics: { val_loss },
        tags: epoch % 2 ? ['odd'] : ['even'],
      });
    }
    const epochs = async (filter: Parameters<typeof manager.list>[0]) =>
      (await manager.list(filter)).map((r) => r.epoch);
    expect(await epochs({ tag: 'odd' })).toEqual([1, 3]);
    expect(await epochs({ minEpoch: 1, maxEpoch: 2 })).toEqual([1, 2]);
    expect(await epochs({ metric: { name: 'val_loss', max: 0.45 } })).toEqual([1, 3]);
    expect(await epochs({ sortBy: 'metric:val_loss' })).toEqual([1, 3, 0, 2]);
    expect(await epochs({ sortBy: 'step' })).toEqual([3, 2, 1, 0]);
    expect(await epochs({ sortBy: 'epoch', order: 'desc', limit: 2 })).toEqual([3, 2]);
    expect(await epochs({ sortBy: 'metric:val_loss', offset: 1, limit: 2 })).toEqual([3, 0]); // a page
    expect(await manager.count({ metric: { name: 'val_loss', max: 0.45 } })).toBe(2);
    expect(await manager.count()).toBe(4);
    await expect(manager.list({ sortBy: 'colour' })).rejects.toThrow(/cannot sort by "colour"/);
  });

  it('a short page of a long list is the same page as in the fully sorted list', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    // Repeated values (ties are broken by sequence) and records without the metric (they go last).
    for (let epoch = 0; epoch < 90; epoch++) {
      const metrics: Record<string, number> = epoch % 7 === 0 ? {} : { val_loss: ((epoch * 37) % 11) / 10 };
      await manager.save({ state: {}, epoch, step: (epoch * 53) % 17, metrics });
    }
    const ids = async (filter: Parameters<typeof manager.list>[0]) => (await manager.list(filter)).map((r) => r.id);
    for (const sortBy of ['metric:val_loss', 'step', 'epoch', 'sequence']) {
      for (const order of ['asc', 'desc'] as const) {
        const all = await ids({ sortBy, order });
        expect(all).toHaveLength(90);
        for (const [offset, limit] of [
          [0, 1],
          [0, 5],
          [3, 4],
          [80, 10],
          [88, 5],
        ] as const) {
          expect(await ids({ sortBy, order, offset, limit })).toEqual(all.slice(offset, offset + limit));
        }
      }
    }
    expect(await ids({ sortBy: 'step', limit: 0 })).toEqual([]);
  });

  it('tags, describes, protects; deletes with hooks, refusing protected ones without force', async () => {
    const hooks = new HookManager<CheckpointEvents>();
    const seen: string[] = [];
    hooks.register('seen', (c) => void seen.push(`${c.reason}:${c.record.epoch}`), ['afterDelete']);
    const { manager } = await openManager(root, { experiment: uniqueName(), hooks });
    for (let epoch = 0; epoch < 3; epoch++) await manager.save({ state: {}, epoch });
    await manager.tag({ epoch: 0 }, 'baseline', 'paper');
    await manager.untag({ epoch: 0 }, 'paper');
    await manager.describe({ epoch: 0 }, 'the run in the paper');
    const record = await manager.protect({ epoch: 0 });
    expect(record).toMatchObject({ tags: ['baseline'], description: 'the run in the paper', protected: true });
    await expect(manager.delete({ epoch: 0 })).rejects.toBeInstanceOf(ConflictError);
    const deleted = await manager.delete({ epoch: 1 });
    expect(existsSync(deleted.path)).toBe(false);
    await manager.delete({ epoch: 0 }, { force: true });
    expect((await manager.list()).map((r) => r.epoch)).toEqual([2]);
    expect(seen).toEqual(['user:1', 'user:0']);
    const summary = await manager.summary();
    expect(summary).toMatchObject({ count: 1, latest: { epoch: 2 }, byTag: {}, protected: 0 });
  });

  it('summarises counts, sizes, best, latest and tags', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    await manager.save({ state: { w: weights(10, 0) }, epoch: 0, metrics: { val_loss: 0.3 }, tags: ['a'] });
    await manager.save({ state: { w: weights(20, 0) }, epoch: 1, metrics: { val_loss: 0.4 }, tags: ['a', 'b'] });
    const records = await manager.list();
    const summary = await manager.summary();
    expect(summary).toMatchObject({
      experiment: manager.experiment,
      count: 2,
      totalSize: (records[0]?.size as number) + (records[1]?.size as number),
      best: { id: records[0]?.id, metrics: { val_loss: 0.3 } },
      latest: { id: records[1]?.id, epoch: 1, step: null },
      byTag: { a: 2, b: 1 },
      problems: [],
    });
  });
});

describe('compare', () => {
  it('puts metrics side by side, lists configuration differences and tensor differences', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    const a = await manager.save({
      state: { w: fromTypedArray(Float32Array.of(1, 2, 3, 4)), b: fromTypedArray(Float32Array.of(0)) },
      epoch: 0,
      metrics: { val_loss: 0.5, acc: 0.7 },
      config: { lr: 0.1, model: { depth: 18, width: 64 } },
    });
    const b = await manager.save({
      state: { w: fromTypedArray(Float32Array.of(1, 2.5, 3, 2)), c: fromTypedArray(Float32Array.of(0)) },
      epoch: 1,
      metrics: { val_loss: 0.4 },
      config: { lr: 0.1, model: { depth: 34, width: 64 } },
    });
    const ida = a.record?.id as string;
    const idb = b.record?.id as string;
    const comparison = await manager.compare([ida, idb], { tensors: true });
    expect(comparison.metrics).toEqual({ acc: { [ida]: 0.7, [idb]: null }, val_loss: { [ida]: 0.5, [idb]: 0.4 } });
    expect(comparison.config).toEqual({ 'model.depth': { [ida]: 18, [idb]: 34 } });
    expect(comparison.tensors?.[idb]).toEqual({
      w: { status: 'different', maxAbsDiff: 2, meanAbsDiff: 0.625 },
      b: { status: 'missing', detail: 'only in the first checkpoint' },
      c: { status: 'missing', detail: 'only in this checkpoint' },
    });
    await expect(manager.compare([ida])).rejects.toThrow(/at least two/);
  });
});

describe('hooks', () => {
  it('beforeSave can veto (skipped with the reason) or amend tags and metadata', async () => {
    const hooks = new HookManager<CheckpointEvents>();
    hooks.register('no-epoch-3', (c, control) => (c.epoch === 3 ? control.veto('epoch 3 is cursed') : undefined), [
      'beforeSave',
    ]);
    hooks.register(
      'stamp',
      (c) => ({ amend: { tags: [...c.tags, 'stamped'], metadata: { ...c.metadata, host: 'lab-1' } } }),
      ['beforeSave'],
    );
    const durations: number[] = [];
    hooks.register('time', (c) => void durations.push(c.durationMs), ['afterSave']);
    const { manager } = await openManager(root, { experiment: uniqueName(), hooks });
    expect(await manager.save({ state: {}, epoch: 3 })).toEqual({
      status: 'skipped',
      record: null,
      reason: 'vetoed by hook no-epoch-3: epoch 3 is cursed',
    });
    const { record } = await manager.save({ state: {}, epoch: 4 });
    expect(record?.tags).toEqual(['stamped']);
    expect((await manager.load()).metadata.host).toBe('lab-1');
    expect(durations).toHaveLength(1);
  });

  it('the validation hook refuses NaN metrics and tensors holding Inf', async () => {
    const hooks = new HookManager<CheckpointEvents>();
    const validation = validationHook({ monitor: 'val_loss' });
    hooks.register('validate', validation.hook, validation.events);
    const { manager } = await openManager(root, { experiment: uniqueName(), hooks });
    const nan = await manager.save({ state: {}, epoch: 0, metrics: { val_loss: Number.NaN } });
    expect(nan).toMatchObject({ status: 'skipped' });
    expect(nan.status === 'skipped' && nan.reason).toMatch(/val_loss/);
    const inf = await manager.save({
      state: { w: fromTypedArray(Float32Array.of(1, Number.POSITIVE_INFINITY)) },
      epoch: 1,
      metrics: { val_loss: 1 },
    });
    expect(inf).toMatchObject({ status: 'skipped', reason: 'vetoed by hook validate: tensor w holds NaN or infinity' });
    expect((await manager.save({ state: { w: weights(3, 1) }, epoch: 2, metrics: { val_loss: 1 } })).status).toBe(
      'saved',
    );
  });

  it('a failing hook is isolated and reported; load, export and backup vetoes throw VetoedError', async () => {
    const hooks = new HookManager<CheckpointEvents>();
    hooks.register('broken', () => {
      throw new Error('hook bug');
    }, ['afterSave']);
    hooks.register('gate', (_c, control) => control.veto('frozen'), ['beforeLoad', 'beforeExport', 'beforeBackup']);
    const { manager, warnings } = await openManager(root, { experiment: uniqueName(), hooks });
    expect((await manager.save({ state: {} })).status).toBe('saved');
    expect(warnings.join('\n')).toMatch(/hook broken failed on afterSave: hook bug/);
    await expect(manager.load()).rejects.toBeInstanceOf(VetoedError);
    await expect(manager.export('latest', join(root, 'vetoed'))).rejects.toThrow(/vetoed by hook gate: frozen/);
    await expect(manager.backup('latest')).rejects.toBeInstanceOf(VetoedError);
  });
});

describe('tracker', () => {
  class MemoryTracker implements Tracker {
    readonly name = 'memory';
    readonly events: string[] = [];
    readonly records = new Map<string, CheckpointRecord>();
    startExperiment(info: { experiment: string }) {
      this.events.push(`start:${info.experiment}`);
    }
    recordCheckpoint(record: CheckpointRecord) {
      this.records.set(record.id, record);
      this.events.push(`record:${record.epoch}`);
    }
    updateCheckpoint(record: CheckpointRecord) {
      this.records.set(record.id, record);
    }
    removeCheckpoint(_experiment: string, id: string) {
      this.records.delete(id);
      this.events.push(`remove:${id}`);
    }
    recordMetrics(_experiment: string, metrics: Record<string, number>, at: { epoch: number | null }) {
      this.events.push(`metrics:${at.epoch}:${Object.keys(metrics).join(',')}`);
    }
    endExperiment(_experiment: string, status: string) {
      this.events.push(`end:${status}`);
    }
  }

  it('is told of every save, flag change, deletion, and the experiment start and end', async () => {
    const tracker = new MemoryTracker();
    const { manager } = await openManager(root, { experiment: 'tracked', tracker, retention: [] });
    await manager.save({ state: {}, epoch: 0, metrics: { val_loss: 0.5 } });
    await manager.save({ state: {}, epoch: 1, metrics: { val_loss: 0.4 } });
    await manager.delete({ epoch: 0 });
    await manager.close('completed');
    const [only] = [...tracker.records.values()];
    expect(tracker.records.size).toBe(1);
    expect(only).toMatchObject({ epoch: 1, isBest: true, isLatest: true });
    expect(tracker.events[0]).toBe('start:tracked');
    expect(tracker.events).toContain('metrics:1:val_loss');
    expect(tracker.events.at(-1)).toBe('end:completed');
  });

  it('a failing tracker never undoes a save', async () => {
    const tracker: Tracker = {
      name: 'flaky',
      recordCheckpoint() {
        throw new Error('database is locked');
      },
    };
    const { manager, warnings } = await openManager(root, { experiment: uniqueName(), tracker });
    expect((await manager.save({ state: {} })).status).toBe('saved');
    expect(warnings.join('\n')).toMatch(/tracker flaky failed in recordCheckpoint: database is locked/);
  });
});

describe('async saves', () => {
  it('returns at once; later mutation of the tensors does not reach the file; flush waits', async () => {
    const { manager } = await openManager(root, {
      experiment: uniqueName(),
      async: true,
      storage: testBackend({ delayMs: 50 }),
    });
    const shared = weights(1000, 1);
    const state = { a: shared, tied: shared, view: { ...shared, data: shared.data.subarray(0, 400), shape: [100] } };
    const outcome = await manager.save({ state, epoch: 0 });
    expect(outcome.status).toBe('pending');
    toFloat32Array(shared); // reading is fine
    new Float32Array(shared.data.buffer, shared.data.byteOffset, 1000).fill(-1); // training goes on, in place
    await manager.flush();
    const done = outcome.status === 'pending' ? await outcome.done : undefined;
    expect(done?.status).toBe('saved');
    const loaded = await manager.load();
    const expected = weights(1000, 1);
    expect(tensorsEqual(loaded.state.a as Tensor, expected)).toBe(true);
    expect(tensorsEqual(loaded.state.tied as Tensor, expected)).toBe(true);
    expect(toFloat32Array(loaded.state.view as Tensor)[99]).toBeCloseTo(1.099, 5);
  });

  it("snapshot 'transfer' moves big buffers to the save in O(1) and copies the small pooled ones", async () => {
    const { manager } = await openManager(root, { experiment: uniqueName(), async: true, snapshot: 'transfer' });
    const big = weights(100_000, 2); // its own 400 KB ArrayBuffer: moved
    const small = fromTypedArray(Buffer.from([1, 2, 3, 4])); // in Node's Buffer pool: copied
    const outcome = await manager.save({ state: { big, small, again: big } });
    expect(outcome.status).toBe('pending');
    expect(big.data.byteLength).toBe(0); // detached: the caller cannot change what is written
    expect(small.data.byteLength).toBe(4);
    await manager.flush();
    const { state } = await manager.load();
    expect(tensorsEqual(state.big as Tensor, weights(100_000, 2))).toBe(true);
    expect(tensorsEqual(state.again as Tensor, weights(100_000, 2))).toBe(true);
    expect([...(state.small as Tensor).data]).toEqual([1, 2, 3, 4]);
  });

  it('runs one save at a time, in order', async () => {
    const order: string[] = [];
    const backend = testBackend({ delayMs: 20 });
    const save = backend.save.bind(backend);
    backend.save = async (path, state, options) => {
      order.push(`start:${state.epoch}`);
      const result = await save(path, state, options);
      order.push(`end:${state.epoch}`);
      return result;
    };
    const { manager } = await openManager(root, { experiment: uniqueName(), async: true, storage: backend });
    await Promise.all([0, 1, 2].map((epoch) => manager.save({ state: { epoch }, epoch })));
    await manager.flush();
    expect(order).toEqual(['start:0', 'end:0', 'start:1', 'end:1', 'start:2', 'end:2']);
    expect((await manager.list()).map((r) => r.epoch)).toEqual([0, 1, 2]);
  });

  it('a background failure is thrown by flush, and the next save', async () => {
    let fail = true;
    const { manager } = await openManager(root, {
      experiment: uniqueName(),
      async: true,
      storage: testBackend({ failWhen: () => fail }),
    });
    const outcome = await manager.save({ state: {}, epoch: 0 });
    const done = outcome.status === 'pending' ? await outcome.done : undefined;
    expect(done).toMatchObject({ status: 'failed' });
    await expect(manager.flush()).rejects.toThrow(/injected failure/);
    await manager.flush(); // reported once
    fail = false;
    await manager.save({ state: {}, epoch: 1 });
    await manager.close();
    await expect((await openManager(root, { experiment: manager.experiment })).manager.list()).resolves.toHaveLength(1);
  });
});

describe('two managers on one experiment in one process', () => {
  it('interleaved saves keep every record', async () => {
    const experiment = uniqueName();
    const a = await openManager(root, { experiment, cache: { ttlMs: 0 } });
    const b = await openManager(root, { experiment, cache: { ttlMs: 0 } });
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).manager.save({ state: { i }, step: i, tags: [`p${i % 2}`] }),
      ),
    );
    const records = await a.manager.list();
    expect(records).toHaveLength(10);
    expect(new Set(records.map((r) => r.sequence)).size).toBe(10);
    expect(new Set(records.map((r) => r.file)).size).toBe(10);
    expect(records.filter((r) => r.isLatest)).toHaveLength(1);
  });
});

describe('sidecar files and inspection', () => {
  it('writes JSON beside the checkpoints atomically, refusing the index name', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    const path = await manager.writeJson('config.json', { lr: 0.1 });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ lr: 0.1 });
    await expect(manager.writeJson('checkpoint_metadata.json', {})).rejects.toThrow(/other than the index/);
    await expect(manager.writeJson('../x.json', {})).rejects.toThrow(/plain .json file name/);
  });

  it('inspects headers, cached', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    await manager.save({ state: { w: weights(12, 0) } });
    const first = await manager.inspect();
    expect(first.parameterCount).toBe(12);
    expect(await manager.inspect()).toBe(first);
  });
});
