import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type CheckpointEvents, HookManager } from '../../hooks/src/index.js'; // the hook manager, over core's event contract (not a package dependency: hooks depends on core)
import {
  anyOf,
  bestOnly,
  type CheckpointManagerOptions,
  type CheckpointRecord,
  everyEpochs,
  everySeconds,
  everySteps,
  keepBest,
  keepEvery,
  keepIfAll,
  keepIfAny,
  keepLatest,
  keepOnePer,
  keepTagged,
  when,
} from '../src/index.js';
import { manualClock, openManager, scratch, uniqueName, weights } from './support/helpers.js';

const root = scratch();
const epochsOf = (records: CheckpointRecord[]) => records.map((r) => r.epoch);

describe('save policies', () => {
  it('every N epochs, with the reason when skipped and a checkpointSkipped event', async () => {
    const hooks = new HookManager<CheckpointEvents>();
    const skipped: string[] = [];
    hooks.register('watch', (c) => void skipped.push(c.reason), ['checkpointSkipped']);
    const { manager } = await openManager(root, { experiment: uniqueName(), savePolicy: everyEpochs(5), hooks });
    const outcomes = [];
    for (let epoch = 0; epoch <= 10; epoch++) outcomes.push(await manager.save({ state: {}, epoch }));
    expect(outcomes.filter((o) => o.status === 'saved')).toHaveLength(3);
    expect(outcomes[3]).toEqual({ status: 'skipped', record: null, reason: 'epoch 3 is not a multiple of 5' });
    expect(epochsOf(await manager.list())).toEqual([0, 5, 10]);
    expect(skipped).toHaveLength(8);
    // force overrides the policy
    expect((await manager.save({ state: {}, epoch: 7, force: true })).status).toBe('saved');
  });

  it('every N steps', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName(), savePolicy: everySteps(100) });
    for (const step of [50, 100, 150, 200]) await manager.save({ state: {}, step });
    expect((await manager.list()).map((r) => r.step)).toEqual([100, 200]);
    expect(await manager.save({ state: {} })).toMatchObject({ status: 'skipped', reason: 'no step given' });
  });

  it('a time interval, by the manager clock', async () => {
    const clock = manualClock();
    const { manager } = await openManager(root, {
      experiment: uniqueName(),
      savePolicy: everySeconds(60),
      now: clock.now,
    });
    const saved: number[] = [];
    for (let i = 0; i < 10; i++) {
      if ((await manager.save({ state: {}, step: i })).status === 'saved') saved.push(i);
      clock.advance(25_000);
    }
    expect(saved).toEqual([0, 3, 6, 9]);
  });

  it('save-best-only, min and max', async () => {
    const min = await openManager(root, { experiment: uniqueName(), savePolicy: bestOnly() });
    for (const [epoch, val_loss] of [0.5, 0.6, 0.4, 0.4, 0.1].entries()) {
      await min.manager.save({ state: {}, epoch, metrics: { val_loss } });
    }
    expect(epochsOf(await min.manager.list())).toEqual([0, 2, 4]);
    expect(await min.manager.save({ state: {}, epoch: 9, metrics: {} })).toMatchObject({
      status: 'skipped',
      reason: 'the monitored metric is missing or NaN',
    });

    const max = await openManager(root, {
      experiment: uniqueName(),
      savePolicy: bestOnly(),
      best: { monitor: 'f1', mode: 'max' },
    });
    for (const [epoch, f1] of [0.5, 0.6, 0.4, 0.7].entries())
      await max.manager.save({ state: {}, epoch, metrics: { f1 } });
    expect(epochsOf(await max.manager.list())).toEqual([0, 1, 3]);
  });

  it('custom predicates, any-of and all-of (an array)', async () => {
    const { manager } = await openManager(root, {
      experiment: uniqueName(),
      savePolicy: [
        anyOf(
          everyEpochs(4),
          when((c) => (c.metrics.acc ?? 0) > 0.9, 'accuracy below 0.9'),
        ),
        everySteps(2),
      ],
    });
    const inputs = [
      { epoch: 1, step: 2, metrics: { acc: 0.95 } }, // any-of by accuracy, step even: saved
      { epoch: 4, step: 3, metrics: { acc: 0.1 } }, // odd step: skipped
      { epoch: 8, step: 4, metrics: { acc: 0.1 } }, // epoch multiple of 4: saved
      { epoch: 9, step: 6, metrics: { acc: 0.2 } }, // neither: skipped
    ];
    const outcomes = [];
    for (const input of inputs) outcomes.push(await manager.save({ state: {}, ...input }));
    expect(outcomes.map((o) => o.status)).toEqual(['saved', 'skipped', 'saved', 'skipped']);
    expect(outcomes[3]).toMatchObject({ reason: 'epoch 9 is not a multiple of 4; accuracy below 0.9' });
    expect(outcomes[1]).toMatchObject({ reason: 'step 3 is not a multiple of 2' });
  });

  it('rejects nonsense parameters', () => {
    expect(() => everyEpochs(0)).toThrow(/positive/);
    expect(() => keepLatest(-1)).toThrow(/positive/);
    expect(() => keepOnePer(Number.NaN)).toThrow(/positive/);
  });
});

describe('retention', () => {
  it('a list keeps what any policy keeps (keepIfAny); keepIfAll keeps only what every policy keeps', async () => {
    const tags = (epoch: number) => (epoch % 2 === 0 ? ['release'] : []);
    const runs = async (retention: CheckpointManagerOptions['retention']) => {
      const { manager } = await openManager(root, { experiment: uniqueName(), retention });
      for (let epoch = 1; epoch <= 10; epoch++) {
        await manager.save({ state: { w: weights(4, epoch) }, epoch, tags: tags(epoch), metrics: { val_loss: epoch } });
      }
      const kept = epochsOf(await manager.list());
      await manager.close();
      return kept;
    };
    // The best (epoch 1) and the latest (10) always stay.
    const list = await runs([keepTagged('release'), keepLatest(3)]);
    expect(list).toEqual([1, 2, 4, 6, 8, 9, 10]);
    expect(await runs(keepIfAny(keepTagged('release'), keepLatest(3)))).toEqual(list);
    expect(await runs(keepIfAll(keepTagged('release'), keepLatest(3)))).toEqual([1, 8, 10]); // releases among the latest 3
    // Retention runs after every save over what is left: the latest 5 left are releases 4-10 and the best.
    expect(await runs(keepIfAll(keepTagged('release'), keepLatest(5)))).toEqual([1, 4, 6, 8, 10]);
  });

  it('keeps the latest N, never deleting the best, and removes the files', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName(), retention: keepLatest(2) });
    const losses = [0.9, 0.1, 0.8, 0.7, 0.6, 0.5];
    const paths: string[] = [];
    for (const [epoch, val_loss] of losses.entries()) {
      const { record } = await manager.save({ state: { w: weights(16, epoch) }, epoch, metrics: { val_loss } });
      paths.push(record?.path as string);
    }
    expect(epochsOf(await manager.list())).toEqual([1, 4, 5]); // best (epoch 1) + latest 2
    expect(paths.map((p) => existsSync(p))).toEqual([false, true, false, false, true, true]);
  });

  it('keeps the best K by any metric, every Nth epoch, one per interval, tagged ones', async () => {
    const clock = manualClock(Date.UTC(2024, 0, 1));
    const { manager } = await openManager(root, {
      experiment: uniqueName(),
      now: clock.now,
      best: { monitor: 'acc', mode: 'max' },
      retention: [keepBest(2), keepEvery({ epochs: 5 }), keepOnePer(3_600_000), keepTagged('milestone')],
    });
    const accs = [0.1, 0.5, 0.2, 0.6, 0.3, 0.2, 0.1, 0.7, 0.2, 0.1, 0.3, 0.2];
    for (const [epoch, acc] of accs.entries()) {
      await manager.save({ state: {}, epoch, metrics: { acc }, tags: epoch === 8 ? ['milestone'] : [] });
      clock.advance(20 * 60_000); // three saves per hour
    }
    // best two: 7 (0.7), 3 (0.6); every 5th: 0, 5, 10; first of each hour: 0, 3, 6, 9; tagged: 8; latest: 11
    expect(epochsOf(await manager.list())).toEqual([0, 3, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('never deletes protected checkpoints; a dry run lists what would go', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    for (let epoch = 0; epoch < 5; epoch++)
      await manager.save({ state: {}, epoch, metrics: { val_loss: 1 - epoch / 10 } });
    await manager.protect({ epoch: 1 });
    const pruning = await openManager(root, { experiment: manager.experiment, retention: keepLatest(1) });
    const plan = await pruning.manager.retentionPlan();
    expect(epochsOf(plan)).toEqual([0, 2, 3]);
    expect(epochsOf(await pruning.manager.list())).toHaveLength(5); // a plan deletes nothing
    const removed = await pruning.manager.applyRetention();
    expect(epochsOf(removed)).toEqual([0, 2, 3]);
    expect(epochsOf(await pruning.manager.list())).toEqual([1, 4]);
  });

  it('deletions go through hooks, which can veto them', async () => {
    const hooks = new HookManager<CheckpointEvents>();
    const deleted: string[] = [];
    hooks.register(
      'keep-epoch-0',
      (c, control) => (c.record.epoch === 0 ? control.veto('epoch 0 is the baseline') : undefined),
      ['beforeDelete'],
    );
    hooks.register('log', (c) => void deleted.push(`${c.record.epoch}:${c.reason}`), ['afterDelete']);
    const { manager, warnings } = await openManager(root, {
      experiment: uniqueName(),
      hooks,
      retention: keepLatest(1),
    });
    for (let epoch = 0; epoch < 3; epoch++) await manager.save({ state: {}, epoch });
    expect(epochsOf(await manager.list())).toEqual([0, 2]);
    expect(deleted).toEqual(['1:retention']);
    expect(warnings.join('\n')).toMatch(/not deleting .*epoch 0 is the baseline/);
  });

  it('invariant over random runs: best, latest and protected always survive, on disk too', async () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let run = 0; run < 6; run++) {
      const { manager } = await openManager(root, {
        experiment: uniqueName('random'),
        retention: [keepLatest(1 + (run % 3)), ...(run % 2 ? [keepBest(1, { monitor: 'acc', mode: 'max' })] : [])],
      });
      const protectedIds = new Set<string>();
      for (let epoch = 0; epoch < 25; epoch++) {
        const { record } = await manager.save({
          state: {},
          epoch,
          metrics: { val_loss: random(), acc: random() },
        });
        if (random() < 0.15 && record) {
          await manager.protect(record.id);
          protectedIds.add(record.id);
        }
        const records = await manager.list();
        const best = records.reduce((a, b) =>
          (b.metrics.val_loss as number) < (a.metrics.val_loss as number) ? b : a,
        );
        expect(records.find((r) => r.isBest)?.id).toBe(best.id);
        expect(records.at(-1)?.epoch).toBe(epoch);
        for (const id of protectedIds) expect(records.some((r) => r.id === id)).toBe(true);
        for (const r of records) expect(existsSync(r.path)).toBe(true);
      }
    }
  });
});
