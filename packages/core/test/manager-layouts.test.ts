import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  formatSpec,
  keepBest,
  pythonIsoformat,
  Seed001Files,
  seed000Layout,
  seed000Path,
  seed001Layout,
  seed001RunName,
  templateLayout,
} from '../src/index.js';
import { manualClock, openManager, scratch, uniqueName } from './support/helpers.js';

const root = scratch();
const inode = (path: string) => statSync(path).ino;

describe('seed 000: <base>/<model>/epoch_<n>.pt and best.pt', () => {
  it('names files by epoch and keeps best.pt naming the best checkpoint', async () => {
    const base = join(root, uniqueName('seed000'));
    const { manager } = await openManager(base, { model: 'yolov8m_edge', layout: seed000Layout() });
    expect(manager.folder).toBe(join(base, 'yolov8m_edge'));
    const ext = '.ckpt-test';
    const bestPath = seed000Path(base, 'yolov8m_edge', undefined, ext);
    expect(manager.bestPath).toBe(bestPath);
    await manager.save({ state: { v: 1 }, epoch: 1, metrics: { val_loss: 0.5 } });
    await manager.save({ state: { v: 2 }, epoch: 2, metrics: { val_loss: 0.7 } });
    expect(inode(bestPath)).toBe(inode(seed000Path(base, 'yolov8m_edge', 1, ext)));
    await manager.save({ state: { v: 3 }, epoch: 3, metrics: { val_loss: 0.2 } });
    expect(inode(bestPath)).toBe(inode(join(manager.folder, `epoch_3${ext}`)));
    expect(
      readdirSync(manager.folder)
        .filter((n) => n.endsWith(ext))
        .sort(),
    ).toEqual([`best${ext}`, `epoch_1${ext}`, `epoch_2${ext}`, `epoch_3${ext}`]);
    // Deleting the best moves best.pt to the next best.
    await manager.delete({ epoch: 3 });
    expect(inode(bestPath)).toBe(inode(seed000Path(base, 'yolov8m_edge', 1, ext)));
    // A reopened manager does not take best.pt for an orphan.
    const reopened = await openManager(base, { model: 'yolov8m_edge', layout: seed000Layout() });
    expect(reopened.manager.recovery.orphans).toEqual([]);
  });

  it('get_checkpoint_path as the seed documents it', () => {
    expect(seed000Path('checkpoints', 'yolov8m_edge')).toBe('checkpoints/yolov8m_edge/best.pt');
    expect(seed000Path('checkpoints/', 'yolov8m_edge', 50)).toBe('checkpoints/yolov8m_edge/epoch_50.pt');
    expect(() => seed000Path('checkpoints', '../etc')).toThrow(/cannot be used in a file name/);
  });
});

describe('seed 001: <data>/checkpoints/<root>/<run>/best-epochXX-val_f1-V.ckpt and JSON files', () => {
  it('writes the run folder, the top-1 checkpoint and the four JSON files as the seed shows', async () => {
    const data = join(root, uniqueName('ARCAFF'));
    const startedAt = new Date(Date.UTC(2025, 1, 12, 14, 30, 45, 123));
    const run = seed001RunName('resnet18', 'weighted_bce', startedAt);
    expect(run).toBe('2025-02-12_14-30-45_resnet18_weighted_bce');
    const { manager } = await openManager(data, {
      experiment: run,
      model: 'resnet18',
      layout: seed001Layout({ root: 'flares/binary_classification', lossFunction: 'weighted_bce' }),
      best: { monitor: 'val_f1', mode: 'max' },
      retention: keepBest(1),
    });
    expect(manager.folder).toBe(join(data, 'checkpoints/flares/binary_classification', run));
    for (const [epoch, val_f1] of [0.7, 0.8, 0.847, 0.81].entries()) {
      await manager.save({ state: { epoch }, epoch, metrics: { val_f1 } });
    }
    // top-1 by val_f1 plus the latest (never deleted)
    expect((await manager.list()).map((r) => r.file)).toEqual([
      'best-epoch02-val_f1-0.847.ckpt',
      'best-epoch03-val_f1-0.810.ckpt',
    ]);
    const end = new Date(Date.UTC(2025, 1, 12, 16, 45, 22, 654));
    const files = new Seed001Files(manager, {
      modelName: 'resnet18',
      lossFunction: 'weighted_bce',
      rootName: 'flares/binary_classification',
      startedAt,
      now: () => end,
    });
    const testResults = {
      test_loss: 0.234,
      test_f1: 0.851,
      test_accuracy: 0.89,
      test_precision: 0.88,
      test_recall: 0.85,
    };
    await files.saveConfig({ MODEL_NAME: 'resnet18', LEARNING_RATE: 0.001 });
    await files.saveTrainingMetadata({
      best_epoch: 42,
      best_val_f1: 0.847,
      num_epochs_trained: 43,
      early_stopping_triggered: true,
      test_results: testResults,
    });
    await files.saveClassificationReport({ test_metrics: testResults });
    await files.saveMinimalLogging({
      bestEpoch: 42,
      bestMetricValue: 0.847,
      bestMetricName: 'val_f1',
      numEpochsTrained: 43,
      earlyStoppingTriggered: true,
    });
    const read = (name: string) => readFileSync(join(manager.folder, name), 'utf8');
    expect(JSON.parse(read('training_summary.json'))).toEqual({
      start_time: '2025-02-12T14:30:45.123000',
      end_time: '2025-02-12T16:45:22.654000',
      model_name: 'resnet18',
      loss_function: 'weighted_bce',
      root_name: 'flares/binary_classification',
      best_epoch: 42,
      best_val_f1: 0.847,
      num_epochs_trained: 43,
      early_stopping_triggered: true,
      test_results: testResults,
    });
    expect(Object.keys(JSON.parse(read('training_summary.json'))).slice(0, 5)).toEqual([
      'start_time',
      'end_time',
      'model_name',
      'loss_function',
      'root_name',
    ]);
    expect(JSON.parse(read('classification_report.json'))).toEqual({
      test_metrics: testResults,
      model_name: 'resnet18',
      loss_function: 'weighted_bce',
      class_names: null,
    });
    expect(read('minimal_logging.json')).toBe(
      `${JSON.stringify(
        {
          timestamp: '2025-02-12T16:45:22.654000',
          best_epoch: 42,
          best_val_f1: 0.847,
          num_epochs_trained: 43,
          early_stopping_triggered: true,
        },
        null,
        2,
      )}\n`,
    );
    expect(JSON.parse(read('config.json'))).toEqual({ MODEL_NAME: 'resnet18', LEARNING_RATE: 0.001 });
    expect(pythonIsoformat(startedAt)).toBe('2025-02-12T14:30:45.123000');
  });
});

describe('seed 003 and Lightning templates', () => {
  it('seed 003: checkpoint_epoch_0001_step_000100_<UTC stamp> with the index and backups/', async () => {
    const clock = manualClock(Date.UTC(2023, 11, 1, 14, 30, 22));
    const { manager } = await openManager(root, {
      experiment: 'my_experiment',
      now: clock.now,
      backup: { when: 'all' },
    });
    await manager.save({ state: {}, epoch: 1, step: 100 });
    clock.advance(23_000);
    await manager.save({ state: {}, epoch: 2, step: 200 });
    const names = readdirSync(manager.folder).sort();
    expect(names).toEqual([
      '.ckpt.lock',
      'backups',
      'checkpoint_epoch_0001_step_000100_20231201_143022.ckpt-test',
      'checkpoint_epoch_0002_step_000200_20231201_143045.ckpt-test',
      'checkpoint_metadata.json',
      'checkpoint_metadata.json.journal',
    ]);
    expect(readdirSync(join(manager.folder, 'backups')).sort()).toEqual([
      'checkpoint_epoch_0001_step_000100_20231201_143022.ckpt-test',
      'checkpoint_epoch_0002_step_000200_20231201_143045.ckpt-test',
    ]);
  });

  it('Lightning templates insert metric names and add a version on collision', async () => {
    const { manager } = await openManager(root, {
      experiment: uniqueName(),
      layout: templateLayout('{epoch:02d}-{val_loss:.3f}'),
    });
    const a = await manager.save({ state: {}, epoch: 3, metrics: { val_loss: 0.12345 } });
    const b = await manager.save({ state: {}, epoch: 3, metrics: { val_loss: 0.12345 } });
    const c = await manager.save({ state: {}, epoch: 3, metrics: { val_loss: 0.12345 } });
    expect([a.record?.file, b.record?.file, c.record?.file]).toEqual([
      'epoch=03-val_loss=0.123.ckpt-test',
      'epoch=03-val_loss=0.123-v1.ckpt-test',
      'epoch=03-val_loss=0.123-v2.ckpt-test',
    ]);
    const plain = await openManager(root, {
      experiment: uniqueName(),
      layout: templateLayout('model-{step}-{acc:.2%}', { autoInsertMetricName: false }),
    });
    const saved = await plain.manager.save({ state: {}, step: 7, metrics: { acc: 0.91234 } });
    expect(saved.record?.file).toBe('model-7-91.23%.ckpt-test');
    expect(existsSync(saved.record?.path as string)).toBe(true);
  });

  it('formats numbers as Python format specs do', () => {
    expect(formatSpec(3, '02d')).toBe('03');
    expect(formatSpec(0.12345, '.3f')).toBe('0.123');
    expect(formatSpec(-2, '03d')).toBe('-02');
    expect(formatSpec(12345.678, '.2e')).toBe('1.23e+04');
    expect(formatSpec(0.5, '.1%')).toBe('50.0%');
    expect(formatSpec(7, '4d')).toBe('   7');
    expect(() => formatSpec(1, 'x')).toThrow(/unsupported format spec/);
  });
});
