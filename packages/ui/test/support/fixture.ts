/**
 * A real workspace for the UI's tests: an experiment written by the
 * CheckpointManager (safetensors), metrics in a SQLite tracking database,
 * hostile names among them, and the server started over it on 127.0.0.1.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointManager, loadSettings, type Settings, tensor } from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';
import { ExperimentTracker } from '@ckpt/tracker-sqlite';
import { startUi, type UiServer } from '../../src/index.js';

export const HOSTILE_TAG = '<script>alert(1)</script>';
export const HOSTILE_TENSOR = '<img src=x onerror=alert(2)>';

export interface Fixture {
  root: string;
  settings: Settings;
  server: UiServer;
  base: string;
  ids: string[];
  close(): Promise<void>;
}

/** A small model's state at `epoch`: weights that change from epoch to epoch. */
export function stateAt(epoch: number) {
  const weights = new Float32Array(64).map((_, i) => Math.sin(i + epoch));
  const bias = new Float32Array(8).fill(epoch / 10);
  return {
    'layer.weight': tensor('F32', [8, 8], new Uint8Array(weights.buffer)),
    'layer.bias': tensor('F32', [8], new Uint8Array(bias.buffer)),
    [HOSTILE_TENSOR]: tensor('F32', [1], new Uint8Array(new Float32Array([epoch]).buffer)),
  };
}

export async function makeWorkspace(
  options: { epochs?: number; host?: string; config?: string } = {},
): Promise<Fixture> {
  const root = mkdtempSync(join(tmpdir(), 'ckpt-ui-'));
  const directory = join(root, 'checkpoints');
  mkdirSync(directory);
  const database = join(root, 'ckpt.db');
  const tracker = ExperimentTracker.open({ database, name: 'mlp', config: { lr: 0.01 } });
  const manager = await CheckpointManager.open({
    directory,
    experiment: 'mlp',
    storage: safetensors,
    best: { monitor: 'val_loss', mode: 'min' },
    tracker,
    warn: () => {},
  });
  const ids: string[] = [];
  const epochs = options.epochs ?? 6;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    for (let step = (epoch - 1) * 10 + 1; step <= epoch * 10; step++) {
      tracker.logMetric('train_loss', 1 / step + (step % 3) * 0.01, step);
    }
    const valLoss = 1 / epoch + (epoch === 3 ? 0.5 : 0);
    const outcome = await manager.save({
      state: stateAt(epoch),
      epoch,
      step: epoch * 10,
      metrics: { val_loss: valLoss, val_accuracy: 1 - valLoss / 2 },
      config: { lr: epoch < 4 ? 0.01 : 0.001, layers: 2 },
      tags: epoch === 2 ? [HOSTILE_TAG] : [],
    });
    if (outcome.status === 'saved') ids.push(outcome.record.id);
  }
  await manager.close();
  tracker.end();
  // A second experiment, without tracked metrics, for the list and overlays.
  const other = await CheckpointManager.open({
    directory,
    experiment: 'baseline',
    storage: safetensors,
    warn: () => {},
  });
  await other.save({ state: stateAt(1), epoch: 1, step: 10, metrics: { val_loss: 0.9 } });
  await other.close();

  const configFile = join(root, 'ckpt.config.yaml');
  if (options.config !== undefined) writeFileSync(configFile, options.config);
  const load = () =>
    loadSettings({
      env: {},
      cwd: root,
      configFile: options.config !== undefined ? configFile : false,
      resolverFile: false,
      flags: { 'checkpoints.directory': directory, 'tracker.database': database },
    });
  const settings = load();
  const server = await startUi({
    settings,
    reloadSettings: load,
    configPath: configFile,
    ...(options.host ? { host: options.host } : {}),
  });
  const base = `http://127.0.0.1:${server.port}`;
  return {
    root,
    settings,
    server,
    base,
    ids,
    close: async () => {
      await server.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
