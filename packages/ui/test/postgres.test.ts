/**
 * The UI over a team's PostgreSQL tracking database: a manager reports its
 * checkpoints through a TrackedRun into a real server, and every page and API
 * reads them back from there; the password never reaches the browser.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointManager, loadSettings, TrackedRun } from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';
import { type PostgresServer, startPostgres } from '@ckpt/testkit/servers';
import { connect } from '@ckpt/tracker-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUi, type UiServer } from '../src/index.js';
import { stateAt } from './support/fixture.js';

let postgres: PostgresServer;
let root: string;
let ui: UiServer;
let base: string;
let url: string;

beforeAll(async () => {
  postgres = startPostgres();
  url = postgres.createDatabase('team');
  root = mkdtempSync(join(tmpdir(), 'ckpt-ui-pg-'));
  const directory = join(root, 'checkpoints');
  const database = await connect(url);
  const run = await TrackedRun.start(database, { name: 'mlp', tags: ['team'] });
  const manager = await CheckpointManager.open({
    directory,
    experiment: 'mlp',
    storage: safetensors,
    best: { monitor: 'val_loss', mode: 'min' },
    tracker: run,
    warn: () => {},
  });
  for (let epoch = 1; epoch <= 4; epoch++) {
    for (let step = (epoch - 1) * 10; step < epoch * 10; step++) run.logMetric('train_loss', 1 / (step + 1), step);
    await manager.save({ state: stateAt(epoch), epoch, step: epoch * 10, metrics: { val_loss: 1 / epoch } });
  }
  await manager.close();
  await run.end();
  await database.close();
  const settings = loadSettings({
    env: {},
    cwd: root,
    configFile: false,
    resolverFile: false,
    flags: { 'checkpoints.directory': directory, 'tracker.database': url },
  });
  ui = await startUi({ settings, configPath: join(root, 'ckpt.config.yaml') });
  base = `http://127.0.0.1:${ui.port}`;
}, 120_000);

afterAll(async () => {
  await ui?.close();
  postgres?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('ckpt ui on PostgreSQL', () => {
  it('lists the experiments the server holds, with their best value', async () => {
    const data = (await (await fetch(`${base}/api/experiments`)).json()) as {
      tracked: boolean;
      experiments: Array<{ name: string; status: string; best: number; tags: string[] }>;
    };
    expect(data.tracked).toBe(true);
    expect(data.experiments).toEqual([
      expect.objectContaining({ name: 'mlp', status: 'completed', best: 0.25, tags: ['team'] }),
    ]);
    const page = await (await fetch(`${base}/experiments`)).text();
    expect(page).toContain('mlp');
  });

  it('plots the metrics logged into the server, including those the manager recorded with each save', async () => {
    const data = (await (await fetch(`${base}/api/e/mlp/metrics?n=train_loss&n=val_loss`)).json()) as {
      series: Array<{ name: string; steps: number[]; values: number[] }>;
      markers: unknown[];
    };
    const train = data.series.find((s) => s.name === 'train_loss');
    expect(train?.steps.at(-1)).toBe(39);
    expect(train?.values.at(-1)).toBe(1 / 40);
    const val = data.series.find((s) => s.name === 'val_loss');
    expect(val?.values).toEqual([1, 0.5, 1 / 3, 0.25]);
    expect(data.markers).toHaveLength(4);
  });

  it('shows the statistics from the server and never sends the password to the browser', async () => {
    const summary = (await (await fetch(`${base}/api/e/mlp/summary`)).json()) as {
      statistics: { checkpoints: { total: number }; metrics: { points: number } };
    };
    expect(summary.statistics.checkpoints.total).toBeGreaterThan(0);
    expect(summary.statistics.metrics.points).toBe(44);
    const settings = await (await fetch(`${base}/api/settings`)).text();
    expect(settings).toContain('postgres://ckpt:***@localhost/team');
    expect(settings).not.toContain(postgres.password);
  });
});
