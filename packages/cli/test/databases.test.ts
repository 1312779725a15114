/**
 * The CLI on every kind of tracking database, as a team uses it: runs logged
 * into SQLite, `ckpt db copy` into a real PostgreSQL, then on into a real
 * MariaDB; every tracker command on each, chosen by --database, CKPT_DATABASE
 * or the config file; passwords never printed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkpointRecord } from '@ckpt/testkit';
import { type MariadbServer, type PostgresServer, startMariadb, startPostgres } from '@ckpt/testkit/servers';
import { connect } from '@ckpt/tracker-postgres';
import { TrackingStore } from '@ckpt/tracker-sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ckpt } from './support/run.js';

let postgres: PostgresServer;
let mariadb: MariadbServer;
let dir: string;
let sqlite: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ckpt-cli-db-'));
  sqlite = join(dir, 'runs.db');
  const store = TrackingStore.open(sqlite);
  for (const [k, name] of ['resnet', 'vit'].entries()) {
    const e = store.startExperiment({ name, project: 'vision', tags: ['team'], config: { lr: 0.001 * (k + 1) } });
    store.logParams(e.id, { seed: k });
    for (let step = 0; step < 2_000; step++) store.logMetric(e.id, 'val_loss', 1 / (step + 1 + k), step);
    store.recordCheckpoint(e.id, checkpointRecord(`${name}-best`, { metrics: { val_loss: 0.01 * (k + 1) } }));
    store.endExperiment(e.id, 'completed');
  }
  store.close();
  postgres = startPostgres();
  mariadb = await startMariadb();
}, 120_000);

afterAll(async () => {
  postgres?.stop();
  await mariadb?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('tracking databases by URL', () => {
  it('copies SQLite → PostgreSQL → MariaDB, verified, and again as a no-op; every command reads each', () => {
    const pg = postgres.createDatabase('team');
    const my = mariadb.createDatabase('team');
    const first = ckpt(['db', 'copy', sqlite, pg, '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ experiments: 2, copied: 2, alreadyThere: 0, conflicts: 0, points: 4_000 });
    expect(first.stdout).not.toContain(postgres.password);
    const again = ckpt(['db', 'copy', sqlite, pg]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('0 copied, 2 already there');
    expect(again.stdout).toContain('postgres://ckpt:***@');
    expect(ckpt(['db', 'copy', pg, my, '--json']).json()).toMatchObject({ copied: 2, points: 4_000, checkpoints: 2 });

    for (const database of [sqlite, pg, my]) {
      const page = ckpt(['experiments', '--database', database, '--sort', 'name', '--json']).json();
      expect(page.experiments.map((e: { name: string }) => e.name)).toEqual(['resnet', 'vit']);
      const metrics = ckpt(['metrics', 'resnet', '--project', 'vision', '--database', database, '--json']).json();
      expect(metrics.metrics[0]).toMatchObject({ name: 'val_loss', count: 2_000, min: 1 / 2_000, lastStep: 1_999 });
      const stats = ckpt(['stats', '--database', database, '--json']).json();
      expect(stats.metrics.points).toBe(4_000);
      const info = ckpt(['db', 'info', '--database', database]);
      expect(info.code).toBe(0);
      expect(info.stdout).toMatch(/2 experiments, 2 metric series, 4,000 points, 2 checkpoints/);
      expect(info.stdout).not.toContain(postgres.password);
      expect(info.stdout).not.toContain(mariadb.password);
    }
  }, 120_000);

  it('resumes a copy that stopped half-way, and reports an experiment that differs instead of overwriting it', async () => {
    const pg = postgres.createDatabase('resume');
    // A copy that stopped after its first experiment: that one is there, the other is not.
    const store = TrackingStore.open(sqlite, { readonly: true });
    const only = store.exportExperiment(store.getExperiment('resnet', 'vision').id);
    store.close();
    const target = await connect(pg);
    await target.importExperiment(only);
    await target.close();
    const partial = ckpt(['db', 'copy', sqlite, pg, '--json']).json();
    expect(partial).toMatchObject({ copied: 1, alreadyThere: 1 });
    const resumed = ckpt(['db', 'copy', sqlite, pg, '--json']).json();
    expect(resumed).toMatchObject({ copied: 0, alreadyThere: 2 });
    // Someone logs more into one of them in the target: the next copy does not touch it, and says so.
    postgres.sql('resume', "UPDATE experiments SET description = 'changed there' WHERE name = 'vit'");
    const conflict = ckpt(['db', 'copy', sqlite, pg]);
    expect(conflict.code).toBe(1);
    expect(conflict.stdout).toMatch(/conflict vision\/vit/);
    expect(conflict.stderr).toMatch(
      /1 experiment\(s\) exist in postgres:\/\/ckpt:\*\*\*@.* with other contents: vision\/vit/,
    );
    expect(conflict.stderr).not.toContain(postgres.password);
  }, 120_000);

  it('takes the database from CKPT_DATABASE and from the config file, and never prints a password', () => {
    const pg = postgres.createDatabase('settings');
    expect(ckpt(['db', 'copy', sqlite, pg]).code).toBe(0);
    const fromEnv = ckpt(['experiments', '--json'], { cwd: dir, env: { CKPT_DATABASE: pg } });
    expect(fromEnv.json().total).toBe(2);
    writeFileSync(join(dir, 'ckpt.config.yaml'), `tracker:\n  database: ${pg}\n`);
    expect(ckpt(['stats', '--json'], { cwd: dir, env: { CKPT_DATABASE: undefined } }).json().experiments.total).toBe(2);
    rmSync(join(dir, 'ckpt.config.yaml'));

    const wrong = pg.replace(`:${postgres.password}@`, ':hunter2-wrong@');
    const refused = ckpt(['experiments', '--database', wrong]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('[CKPT_DATABASE_AUTH]');
    expect(refused.stderr).not.toContain('hunter2-wrong');
    const missing = ckpt(['stats', '--database', postgres.url('nowhere'), '--json']);
    expect(JSON.parse(missing.stderr).error.code).toBe('CKPT_DATABASE_MISSING');
    expect(missing.stderr).not.toContain(postgres.password);
    const bad = ckpt(['stats', '--database', 'oracle://db.example/x']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown database URL scheme.*\[CKPT_DATABASE_URL\]/);
    const self = ckpt(['db', 'copy', pg, pg]);
    expect(self.stderr).toMatch(/onto itself/);
  }, 120_000);
});
