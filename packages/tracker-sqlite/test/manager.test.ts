import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointManager, fromTypedArray, keepLatest } from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';
import { describe, expect, it } from 'vitest';
import { ExperimentTracker, TrackingStore } from '../src/index.js';
import { databasePath } from './support/helpers.js';

describe('a CheckpointManager reporting to the tracker', () => {
  it('records every checkpoint, flag change and deletion, and the metrics of each save', async () => {
    const database = databasePath('managed');
    const tracker = ExperimentTracker.open({ database, name: 'resnet', project: 'vision', config: { lr: 0.01 } });
    const manager = await CheckpointManager.open({
      directory: mkdtempSync(join(tmpdir(), 'ckpt-tracked-')),
      experiment: tracker.name,
      storage: safetensors,
      tracker,
      retention: keepLatest(2),
      integrity: { fsync: false },
      warn: (message) => {
        throw new Error(message);
      },
    });
    const losses = [0.5, 0.3, 0.4, 0.35];
    for (const [epoch, val_loss] of losses.entries()) {
      await manager.save({
        state: { w: fromTypedArray(Float32Array.of(epoch)) },
        epoch,
        step: epoch * 100,
        metrics: { val_loss },
      });
    }
    await manager.close();
    tracker.end();

    const store = TrackingStore.open(database);
    const id = store.getExperiment('resnet', 'vision').id;
    const live = store.checkpoints(id);
    const records = await (
      await CheckpointManager.open({
        directory: manager.folder.replace(/\/resnet$/, ''),
        experiment: 'resnet',
        storage: safetensors,
      })
    ).list();
    expect(live.map((c) => [c.id, c.isBest, c.isLatest, c.sha256, c.size])).toEqual(
      records.map((r) => [r.id, r.isBest, r.isLatest, r.sha256, r.size]),
    );
    expect(live.map((c) => c.epoch)).toEqual([1, 2, 3]); // epoch 0 deleted by retention; 1 kept as best
    const all = store.checkpoints(id, { includeDeleted: true });
    expect(all.filter((c) => c.deletedAt).map((c) => c.epoch)).toEqual([0]);
    expect(store.bestCheckpoints({ metric: 'val_loss', n: 1 })[0]).toMatchObject({ epoch: 1, isBest: true });
    expect(store.metricHistory(id, 'val_loss').map((p) => [p.step, p.value])).toEqual([
      [0, 0.5],
      [100, 0.3],
      [200, 0.4],
      [300, 0.35],
    ]);
    expect(store.getExperiment(id).status).toBe('completed');
    store.close();
  });
});
