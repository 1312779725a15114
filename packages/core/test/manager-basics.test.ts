import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CheckpointManager,
  InvalidArgumentError,
  NotFoundError,
  StorageRegistry,
  type Tensor,
  tensorsEqual,
  toFloat32Array,
} from '../src/index.js';
import {
  manualClock,
  openManager,
  scratch,
  sha256OfFile,
  testBackend,
  uniqueName,
  weights,
} from './support/helpers.js';

const root = scratch();

describe('saving and loading', () => {
  it('writes the seed 003 name, records size and digest of the file, and reads it back', async () => {
    const clock = manualClock();
    const { manager } = await openManager(root, { experiment: uniqueName(), now: clock.now });
    const state = { model: { w: weights(64, 1), b: weights(4, 2) }, note: 'hello', lr: 0.01 };
    const outcome = await manager.save({ state, epoch: 1, step: 100, metrics: { val_loss: 0.5, acc: 0.8 } });
    expect(outcome.status).toBe('saved');
    const record = outcome.record as NonNullable<typeof outcome.record>;
    expect(record.file).toBe('checkpoint_epoch_0001_step_000100_20231201_143022.ckpt-test');
    expect(record.id).toBe('checkpoint_epoch_0001_step_000100_20231201_143022');
    expect(record.path).toBe(join(manager.folder, record.file));
    expect(record.sha256).toBe(sha256OfFile(record.path));
    expect(record.size).toBe(readFileSync(record.path).length);
    expect(record).toMatchObject({
      epoch: 1,
      step: 100,
      isBest: true,
      isLatest: true,
      status: 'ok',
      format: 'ckpt-test',
    });
    expect(record.timestamp).toBe('2023-12-01T14:30:22.000Z');

    // The record is journaled; closing folds the journal into checkpoint_metadata.json.
    const indexPath = join(manager.folder, 'checkpoint_metadata.json');
    expect(readFileSync(`${indexPath}.journal`, 'utf8')).toContain(record.sha256);

    const loaded = await manager.load();
    expect(loaded.record.id).toBe(record.id);
    const model = loaded.state.model as Record<string, Tensor>;
    expect(tensorsEqual(model.w as Tensor, state.model.w)).toBe(true);
    expect(loaded.state.note).toBe('hello');
    expect(JSON.parse(loaded.metadata.ckpt_record as string)).toMatchObject({ epoch: 1, step: 100 });
    await manager.close();
    const index = JSON.parse(readFileSync(indexPath, 'utf8'));
    expect(index.checkpoints).toHaveLength(1);
    expect(index.checkpoints[0]).toMatchObject({ id: record.id, sha256: record.sha256, size: record.size });
    expect(index.pending).toEqual([]);
    expect(readFileSync(`${indexPath}.journal`, 'utf8')).toBe('');
  });

  it('composes model, optimizer and scheduler into the dict torch code expects', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    await manager.save({
      model: { w: weights(3, 0) },
      optimizer: { lr: 0.1 },
      scheduler: { last_epoch: 4 },
      epoch: 4,
      step: 40,
    });
    const { state } = await manager.load('latest');
    expect(Object.keys(state)).toEqual([
      'model_state_dict',
      'optimizer_state_dict',
      'scheduler_state_dict',
      'epoch',
      'step',
    ]);
    expect(state.optimizer_state_dict).toEqual({ lr: 0.1 });
    expect(state.epoch).toBe(4);
  });

  it('finds checkpoints by id, epoch, step, best, latest and best by any metric', async () => {
    const clock = manualClock();
    const { manager } = await openManager(root, { experiment: uniqueName(), now: clock.now });
    const ids: string[] = [];
    const losses = [0.9, 0.3, 0.5, 0.4];
    const accs = [0.5, 0.7, 0.9, 0.6];
    for (let i = 0; i < 4; i++) {
      clock.advance(1000);
      const { record } = await manager.save({
        state: { w: weights(8, i) },
        epoch: i,
        step: i * 10,
        metrics: { val_loss: losses[i] as number, acc: accs[i] as number },
      });
      ids.push(record?.id as string);
    }
    expect((await manager.get('best'))?.id).toBe(ids[1]);
    expect((await manager.get('latest'))?.id).toBe(ids[3]);
    expect((await manager.get({ epoch: 2 }))?.id).toBe(ids[2]);
    expect((await manager.get({ step: 30 }))?.id).toBe(ids[3]);
    expect((await manager.get({ best: 'acc', mode: 'max' }))?.id).toBe(ids[2]);
    expect((await manager.get({ best: 'val_loss' }))?.id).toBe(ids[1]);
    expect((await manager.get(ids[0] as string))?.epoch).toBe(0);
    expect(await manager.get('nope')).toBeUndefined();
    await expect(manager.load('nope')).rejects.toBeInstanceOf(NotFoundError);
    const best = await manager.load('best');
    expect(toFloat32Array(best.state.w as Tensor)[0]).toBe(1);
    const flags = (await manager.list()).map((r) => [r.isBest, r.isLatest]);
    expect(flags).toEqual([
      [false, false],
      [true, false],
      [false, false],
      [false, true],
    ]);
  });

  it('keeps best and latest exact across restarts, and a tie keeps the earlier best', async () => {
    const experiment = uniqueName();
    const clock = manualClock();
    const first = await openManager(root, { experiment, now: clock.now, best: { monitor: 'acc', mode: 'max' } });
    for (const [i, acc] of [0.5, 0.8, 0.8].entries()) {
      clock.advance(1000);
      await first.manager.save({ state: { w: weights(2, i) }, epoch: i, metrics: { acc } });
    }
    const before = (await first.manager.list()).map((r) => ({ id: r.id, isBest: r.isBest, isLatest: r.isLatest }));
    await first.manager.close();
    expect(before.map((r) => r.isBest)).toEqual([false, true, false]);

    const second = await openManager(root, { experiment, now: clock.now, best: { monitor: 'acc', mode: 'max' } });
    const after = (await second.manager.list()).map((r) => ({ id: r.id, isBest: r.isBest, isLatest: r.isLatest }));
    expect(after).toEqual(before);
    clock.advance(1000);
    const { record } = await second.manager.save({ state: { w: weights(2, 9) }, epoch: 3, metrics: { acc: 0.95 } });
    expect(record?.isBest).toBe(true);
    expect((await second.manager.list()).filter((r) => r.isBest)).toHaveLength(1);
  });

  it('ranks by a best function, and warns when the monitored metric changed since the last run', async () => {
    const experiment = uniqueName();
    const first = await openManager(root, {
      experiment,
      best: { fn: (m) => (m.precision ?? 0) + (m.recall ?? 0), name: 'p+r' },
    });
    await first.manager.save({ state: {}, epoch: 0, metrics: { precision: 0.9, recall: 0.1 } });
    await first.manager.save({ state: {}, epoch: 1, metrics: { precision: 0.6, recall: 0.6 } });
    expect((await first.manager.best())?.epoch).toBe(1);
    const second = await openManager(root, { experiment, best: { monitor: 'precision', mode: 'max' } });
    expect(second.warnings.join('\n')).toMatch(/best was decided by p\+r .* now by precision/);
    expect((await second.manager.best())?.epoch).toBe(0);
  });

  it('stores NaN and infinite metrics faithfully', async () => {
    const experiment = uniqueName();
    const { manager } = await openManager(root, { experiment });
    await manager.save({ state: {}, epoch: 0, metrics: { val_loss: Number.NaN, grad: Number.POSITIVE_INFINITY } });
    await manager.close();
    const [record] = await (await openManager(root, { experiment })).manager.list();
    expect(record?.metrics.val_loss).toBeNaN();
    expect(record?.metrics.grad).toBe(Number.POSITIVE_INFINITY);
    expect(record?.isBest).toBe(false); // NaN is never best
  });
});

describe('options and arguments', () => {
  const backend = testBackend();

  it.each([
    [{}, /`directory` must be a folder path/],
    [{ directory: 's3://bucket/runs', storage: backend }, /`directory` is a URL/],
    [{ directory: root, storage: backend, colour: 'red' }, /unknown option `colour`/],
    [{ directory: root, storage: backend, experiment: 'a/b' }, /`experiment` must be a non-empty name/],
    [{ directory: root, storage: backend, best: { monitor: 'x', mode: 'up' } }, /`best.mode` must be "min" or "max"/],
    [{ directory: root, storage: 'safetensors' }, /no `registry` was given/],
    [{ directory: root, storage: 'nope', registry: new StorageRegistry([backend]) }, /no storage backend named "nope"/],
    [{ directory: root, storage: {} }, /`storage` must be a storage backend/],
    [{ directory: root, storage: backend, compression: 'zstd' }, /`compression` must be "gzip" or false/],
    [{ directory: root, storage: backend, savePolicy: 5 }, /`savePolicy` must be policies/],
    [{ directory: root, storage: backend, backup: { when: 'sometimes' } }, /`backup.when` must be/],
    [{ directory: root, storage: backend, lockTimeoutMs: -1 }, /`lockTimeoutMs` must be a non-negative integer/],
  ])('refuses %j', async (options, message) => {
    const error = await CheckpointManager.open(options as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses bad save arguments with what was wrong, and writes nothing', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    await expect(manager.save({})).rejects.toThrow(/nothing to save/);
    await expect(manager.save({ state: {}, epoch: -1 })).rejects.toThrow(/`epoch` must be a non-negative integer/);
    await expect(manager.save({ state: {}, step: 1.5 })).rejects.toThrow(/`step` must be a non-negative integer/);
    await expect(manager.save({ state: {}, metrics: { loss: '0.1' as never } })).rejects.toThrow(
      /metric "loss" must be a number/,
    );
    await expect(manager.save({ state: { f: (() => 1) as never } })).rejects.toThrow(InvalidArgumentError);
    await expect(manager.save({ state: {}, model: {} })).rejects.toThrow(/not both/);
    await expect(manager.save({ state: {}, tags: [''] })).rejects.toThrow(/tags/);
    expect(await manager.list()).toEqual([]);
    expect(readdirSync(manager.folder).filter((n) => n.endsWith('.ckpt-test'))).toEqual([]);
  });

  it('a failing backend write leaves no record, no intent and no temporary', async () => {
    const { manager } = await openManager(root, {
      experiment: uniqueName(),
      storage: testBackend({ failWhen: () => true }),
    });
    await expect(manager.save({ state: { w: weights(4, 0) } })).rejects.toThrow(/injected failure/);
    expect(await manager.list()).toEqual([]);
    await manager.close();
    const index = JSON.parse(readFileSync(join(manager.folder, 'checkpoint_metadata.json'), 'utf8'));
    expect(index).toMatchObject({ checkpoints: [], pending: [] });
    expect(readdirSync(manager.folder).filter((n) => !n.startsWith('checkpoint_metadata.json'))).toEqual([
      '.ckpt.lock',
    ]);
  });

  it('closes: later saves are refused', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    await manager.close();
    expect(() => manager.save({ state: {} })).toThrow(/closed/);
  });
});
