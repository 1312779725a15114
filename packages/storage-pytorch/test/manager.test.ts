import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bestOnly,
  CheckpointManager,
  fromTypedArray,
  keepBest,
  seed000Layout,
  seed001Layout,
  seed001RunName,
  type Tensor,
  toFloat32Array,
} from '@ckpt/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { requirePythonModules, runPython, skipPython } from '../../../tools/testing/python.js';
import { pytorch } from '../src/index.js';

// The CheckpointManager over the torch backend: the files the seeds name
// (.pt, Lightning-style .ckpt) are what torch.load reads.
const root = mkdtempSync(join(tmpdir(), 'ckpt-pt-manager-'));

const LOAD = `
import json, sys, torch
out = {}
for path in json.loads(sys.stdin.read()):
    ckpt = torch.load(path, weights_only=True)
    out[path] = {
        'keys': sorted(ckpt.keys()),
        'epoch': ckpt.get('epoch'),
        'w': ckpt['model_state_dict']['fc.weight'].tolist(),
        'lr': ckpt['optimizer_state_dict']['param_groups'][0]['lr'],
    }
print(json.dumps(out))
`;

function model(epoch: number) {
  return { 'fc.weight': fromTypedArray(Float32Array.of(epoch, epoch + 0.5)) };
}

describe.skipIf(skipPython)('the manager writes what torch loads', () => {
  beforeAll(() => requirePythonModules(['torch']));

  it('seed 000: epoch_<n>.pt and best.pt load in torch with weights_only=True', async () => {
    const manager = await CheckpointManager.open({
      directory: root,
      model: 'yolov8m_edge',
      storage: pytorch,
      layout: seed000Layout({ extension: '.pt' }),
      warn: () => {},
    });
    for (const [epoch, val_loss] of [0.5, 0.2, 0.4].entries()) {
      await manager.save({
        model: model(epoch),
        optimizer: { param_groups: [{ lr: 0.01 }] },
        epoch,
        metrics: { val_loss },
      });
    }
    const best = join(root, 'yolov8m_edge', 'best.pt');
    const epoch2 = join(root, 'yolov8m_edge', 'epoch_2.pt');
    const seen = JSON.parse(runPython(LOAD, [], JSON.stringify([best, epoch2])).stdout);
    expect(seen[best]).toEqual({
      keys: ['epoch', 'model_state_dict', 'optimizer_state_dict'],
      epoch: 1,
      w: [1, 1.5],
      lr: 0.01,
    });
    expect(seen[epoch2].epoch).toBe(2);
    expect(statSync(best).ino).toBe(statSync(join(root, 'yolov8m_edge', 'epoch_1.pt')).ino);
    await manager.close();
  });

  it('seed 001: the top-1 best-epochXX-val_f1-V.ckpt loads in torch, and the manager resumes from it', async () => {
    const run = seed001RunName('resnet18', 'focal', new Date(Date.UTC(2025, 1, 12, 15, 10, 33)));
    const options = {
      directory: root,
      experiment: run,
      model: 'resnet18',
      storage: pytorch,
      layout: seed001Layout({ root: 'flares/multiclass', lossFunction: 'focal' }),
      best: { monitor: 'val_f1', mode: 'max' as const },
      savePolicy: bestOnly(),
      retention: keepBest(1),
      warn: () => {},
    };
    const manager = await CheckpointManager.open(options);
    for (const [epoch, val_f1] of [0.61, 0.7, 0.65, 0.72, 0.71].entries()) {
      await manager.save({
        model: model(epoch),
        optimizer: { param_groups: [{ lr: 0.001 }] },
        epoch,
        metrics: { val_f1 },
      });
    }
    const records = await manager.list();
    expect(records.map((r) => r.file)).toEqual(['best-epoch03-val_f1-0.720.ckpt']);
    const [only] = records;
    const seen = JSON.parse(runPython(LOAD, [], JSON.stringify([only?.path])).stdout);
    expect(seen[only?.path as string]).toMatchObject({ epoch: 3, w: [3, 3.5], lr: 0.001 });
    await manager.close();

    const reopened = await CheckpointManager.open(options);
    const resumed = await reopened.resume();
    if (!resumed) throw new Error('nothing to resume from');
    const weights = (resumed.state.model_state_dict as Record<string, Tensor>)['fc.weight'] as Tensor;
    expect([...toFloat32Array(weights)]).toEqual([3, 3.5]);
    expect(resumed.record).toMatchObject({ epoch: 3, isBest: true, isLatest: true });
  });
});
