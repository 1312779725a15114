/**
 * The demo's training run: an MLP learning a three-armed spiral, checkpointed
 * every epoch by a CheckpointManager (safetensors) that tracks in SQLite,
 * guards against NaN with a hook, keeps the best 3 by validation loss plus
 * the latest, and resumes from the latest checkpoint when there is one.
 */
import { join } from 'node:path';
import { CheckpointManager, keepBest, keepLatest, StorageRegistry } from '@ckpt/core';
import { type CheckpointEvents, HookManager, validationHook } from '@ckpt/hooks';
import { pytorch } from '@ckpt/storage-pytorch';
import { safetensors } from '@ckpt/storage-safetensors';
import { ExperimentTracker } from '@ckpt/tracker-sqlite';
import { Adam, Mlp, random } from './mlp.js';

export const EXPERIMENT = 'spiral-mlp';
export const PROJECT = 'ckpt-demo';

export interface TrainOptions {
  /** The demo folder: checkpoints/ and ckpt.db go in it. */
  folder: string;
  epochs: number;
  /** Kill this process with SIGKILL in the middle of this epoch (a real crash). */
  crashAtEpoch?: number;
  log: (line: string) => void;
}

export const CONFIG = {
  model: 'mlp',
  sizes: [2, 64, 64, 3],
  optimizer: 'adam',
  learning_rate: 0.01,
  batch_size: 64,
  train_samples: 1500,
  val_samples: 600,
  seed: 7,
};

/** Points on three interleaved spiral arms, with noise; the label is the arm. */
export function spiral(count: number, seed: number): { x: Float32Array; y: Uint8Array } {
  const rand = random(seed);
  const x = new Float32Array(count * 2);
  const y = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const arm = i % 3;
    const r = rand();
    const angle = arm * ((2 * Math.PI) / 3) + r * 3.5 + (rand() - 0.5) * 0.5;
    x[2 * i] = r * Math.cos(angle);
    x[2 * i + 1] = r * Math.sin(angle);
    y[i] = arm;
  }
  return { x, y };
}

export function openTracker(folder: string): ExperimentTracker {
  return ExperimentTracker.open({
    database: join(folder, 'ckpt.db'),
    name: EXPERIMENT,
    project: PROJECT,
    tags: ['demo', 'mlp'],
    config: CONFIG,
    description: 'an MLP on a synthetic three-arm spiral, trained by the ckpt demo',
  });
}

/** Opens the demo's manager; checkpoints retention deletes are passed to `onDelete`. */
export async function openManager(
  folder: string,
  tracker: ExperimentTracker | undefined,
  onDelete: (record: { id: string; epoch?: number | null }) => void = () => {},
) {
  const hooks = new HookManager<CheckpointEvents>();
  const guard = validationHook({ monitor: ['train_loss', 'val_loss'] });
  hooks.register('nan-guard', guard.hook, guard.events);
  hooks.register('log-retention', { afterDelete: ({ record }) => onDelete(record) }, ['afterDelete']);
  return CheckpointManager.open({
    directory: join(folder, 'checkpoints'),
    experiment: EXPERIMENT,
    model: 'mlp',
    storage: 'safetensors',
    registry: new StorageRegistry([safetensors, pytorch]),
    ...(tracker ? { tracker } : {}),
    hooks,
    best: { monitor: 'val_loss', mode: 'min' },
    retention: [keepBest(3), keepLatest(1)],
  });
}

/** Trains to `epochs`, starting after the latest checkpoint if there is one. Returns the epochs run. */
export async function train(options: TrainOptions): Promise<{ from: number; to: number; resumedFrom?: string }> {
  const { folder, log } = options;
  const tracker = openTracker(folder);
  const deleted: Array<number | null | undefined> = [];
  const manager = await openManager(folder, tracker, (record) => deleted.push(record.epoch));
  const model = new Mlp(CONFIG.sizes, CONFIG.seed);
  const optimizer = new Adam(model.parameters, model.shapes, CONFIG.learning_rate);
  const train = spiral(CONFIG.train_samples, 1);
  const val = spiral(CONFIG.val_samples, 2);

  let start = 1;
  const resumed = await manager.resume();
  if (resumed) {
    const state = resumed.state as Record<string, Record<string, unknown>>;
    model.loadStateDict(state.model_state_dict as Record<string, unknown>);
    optimizer.loadStateDict(state.optimizer_state_dict as Record<string, unknown>);
    start = (resumed.record.epoch ?? 0) + 1;
    log(
      `  resumed from ${resumed.record.id} (epoch ${resumed.record.epoch}, digest verified): continuing at epoch ${start}`,
    );
  }

  const grads = model.parameters.map((p) => new Float32Array(p.length));
  const n = CONFIG.train_samples;
  const batch = CONFIG.batch_size;
  for (let epoch = start; epoch <= options.epochs; epoch++) {
    // The shuffle depends only on the epoch, so a resumed run sees the same batches.
    const order = Array.from({ length: n }, (_, i) => i);
    const rand = random(1000 + epoch);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    let trainLoss = 0;
    for (let b = 0; b < n; b += batch) {
      const rows = order.slice(b, b + batch);
      const x = new Float32Array(rows.length * 2);
      const y = new Uint8Array(rows.length);
      rows.forEach((r, k) => {
        x[2 * k] = train.x[2 * r] as number;
        x[2 * k + 1] = train.x[2 * r + 1] as number;
        y[k] = train.y[r] as number;
      });
      const { loss } = model.loss(x, y, rows.length, grads);
      optimizer.update(grads);
      trainLoss += loss * rows.length;
      tracker.logMetric('batch_loss', loss, optimizer.step);
      if (epoch === options.crashAtEpoch && b >= n / 2) {
        log(`  ** simulated crash: SIGKILL in the middle of epoch ${epoch} **`);
        process.kill(process.pid, 'SIGKILL');
      }
    }
    const { loss: valLoss, correct } = model.loss(val.x, val.y, CONFIG.val_samples);
    const metrics = { train_loss: trainLoss / n, val_loss: valLoss, val_accuracy: correct / CONFIG.val_samples };
    const outcome = await manager.save({
      model: model.stateDict(),
      optimizer: optimizer.stateDict(),
      epoch,
      step: optimizer.step,
      metrics,
      config: CONFIG,
    });
    tracker.flush();
    const saved = outcome.status === 'saved' ? outcome.record : undefined;
    const what = saved
      ? `saved${saved.isBest ? ' (new best)' : ''}`
      : `not saved: ${outcome.status === 'skipped' ? outcome.reason : outcome.status}`;
    const pruned = deleted.length > 0 ? `; retention removed epoch ${deleted.splice(0).join(', ')}` : '';
    log(
      `  epoch ${String(epoch).padStart(2)}  train_loss ${metrics.train_loss.toFixed(4)}  val_loss ${valLoss.toFixed(4)}  val_acc ${(metrics.val_accuracy * 100).toFixed(1)}%  ${what}${pruned}`,
    );
  }
  await manager.close();
  tracker.end('completed');
  return { from: start, to: options.epochs, ...(resumed ? { resumedFrom: resumed.record.id } : {}) };
}
