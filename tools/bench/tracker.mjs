#!/usr/bin/env node
// Experiment tracking on SQLite, PostgreSQL and MariaDB, against MLflow, in one run.
//
//   node tools/bench/tracker.mjs [--points 1000000] [--checkpoints 100000] [--dir /tmp/ckpt-bench]
//
// 1. Log 1,000,000 metric points (10 series) through each tracker from one process:
//    @ckpt/tracker-sqlite, @ckpt/tracker-postgres and @ckpt/tracker-mysql (private servers
//    started here from the machine's PostgreSQL and MariaDB, on Unix sockets), against a
//    naive loop of one INSERT per transaction on SQLite and MLflow's SQLAlchemy store
//    (log_batch, 1,000 metrics a call) on SQLite and on the same PostgreSQL server.
// 2. The best 10 of 100,000 checkpoints by a metric, on each tracker.
// Targets (issues 6 and 16): SQLite >= 500,000 points/s and best-10 <= 5 ms; PostgreSQL
// >= 200,000 points/s and >= 20x MLflow on the same server, best-10 <= 10 ms.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startMariadb, startPostgres } from '@ckpt/testkit/servers';
import { connect as connectMysql } from '@ckpt/tracker-mysql';
import { connect as connectPostgres } from '@ckpt/tracker-postgres';
import { connect as connectSqlite, TrackingStore } from '@ckpt/tracker-sqlite';
import { machine, median, table, target } from './lib.mjs';

const { values: args } = parseArgs({
  options: {
    points: { type: 'string', default: '1000000' },
    checkpoints: { type: 'string', default: '100000' },
    dir: { type: 'string', default: '/tmp/ckpt-bench' },
  },
});
const points = Number(args.points);
const checkpointCount = Number(args.checkpoints);
const root = join(args.dir, `tracker-${process.pid}`);
mkdirSync(root, { recursive: true });
const seconds = (start) => Number(process.hrtime.bigint() - start) / 1e9;
const rate = (r) => `${Math.round(r).toLocaleString('en-US')} points/s`;

console.log(`# trackers (${machine()})`);
const postgres = startPostgres();
const mariadb = await startMariadb();
process.once('exit', () => postgres.stop());

// --- 1. logging ---------------------------------------------------------------------
const series = Array.from({ length: 10 }, (_, i) => `metric_${i}`);

/** Points/s of 1,000,000 points logged through a TrackingDatabase, waiting on back-pressure as a training loop would. */
async function logThrough(db) {
  const { id } = await db.startExperiment({ name: 'bench' });
  const start = process.hrtime.bigint();
  for (let i = 0; i < points; i++) {
    const pending = db.logMetric(id, series[i % 10], Math.sin(i), Math.floor(i / 10));
    if (pending) await pending;
  }
  await db.flush();
  const elapsed = seconds(start);
  const stored = (await db.statistics()).metrics.points;
  await db.close();
  if (stored !== points) throw new Error(`${stored} of ${points} points stored`);
  return points / elapsed;
}

function logNaive(count) {
  const store = TrackingStore.open(join(root, 'naive.db'));
  const id = store.startExperiment({ name: 'naive' }).id;
  const db = store.db;
  db.prepare("INSERT INTO metric_series (experiment_id, name) VALUES (?, 'x')").run(id);
  const seriesId = db.prepare("SELECT id FROM metric_series WHERE name = 'x'").get().id;
  const insert = db.prepare('INSERT INTO metric_points (id, step, value, timestamp) VALUES (?, ?, ?, ?)');
  const start = process.hrtime.bigint();
  // Autocommit: one transaction per point (ids as the schema clusters them).
  for (let i = 0; i < count; i++) insert.run(seriesId * 2 ** 32 + i, i, Math.sin(i), Date.now());
  const elapsed = seconds(start);
  store.close();
  return count / elapsed;
}

const mlflowVenv = fileURLToPath(new URL('../python/.venv-mlflow', import.meta.url));
function mlflowPython() {
  const python = join(mlflowVenv, 'bin/python');
  if (!existsSync(python)) {
    const made = spawnSync('python3', ['-m', 'venv', mlflowVenv], { stdio: 'inherit' });
    const pip =
      made.status === 0 &&
      spawnSync(
        join(mlflowVenv, 'bin/pip'),
        ['install', '-q', 'mlflow-skinny', 'sqlalchemy', 'alembic', 'psycopg2-binary'],
        { stdio: 'inherit' },
      );
    if (pip?.status !== 0) return undefined;
  }
  return python;
}

/** MLflow's SqlAlchemyStore.log_batch into `uri` (a SQLAlchemy URL). */
function logMlflow(uri, count) {
  const python = mlflowPython();
  if (!python) return undefined;
  const script = `
import json, math, sys, time
from mlflow.entities import Metric
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
store = SqlAlchemyStore(sys.argv[1], sys.argv[2])
experiment = store.create_experiment("bench")
run = store.create_run(experiment, "bench", int(time.time() * 1000), [], "bench")
count = int(sys.argv[3])
names = [f"metric_{i}" for i in range(10)]
now = int(time.time() * 1000)
start = time.perf_counter()
for base in range(0, count, 1000):
    store.log_batch(run.info.run_id, [Metric(names[i % 10], math.sin(i), now, i // 10) for i in range(base, min(base + 1000, count))], [], [])
print(json.dumps({"rate": count / (time.perf_counter() - start), "version": __import__("mlflow").__version__}))
`;
  const result = spawnSync(python, ['-c', script, uri, join(root, 'mlflow-artifacts'), String(count)], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (result.status !== 0) {
    console.log(`MLflow failed: ${result.stderr.split('\n').slice(-3).join(' ')}`);
    return undefined;
  }
  return JSON.parse(result.stdout.trim().split('\n').at(-1));
}

const pgUrl = postgres.createDatabase('bench_points');
const myUrl = mariadb.createDatabase('bench_points');
const sqliteRate = await logThrough(await connectSqlite(join(root, 'batched.db')));
const pgRate = await logThrough(await connectPostgres(pgUrl));
const myRate = await logThrough(await connectMysql(myUrl));
const naiveCount = 20_000;
const naive = logNaive(naiveCount);
const mlflowCount = 100_000;
const mlflowSqlite = logMlflow(`sqlite:///${join(root, 'mlflow.db')}`, mlflowCount);
postgres.createDatabase('mlflow');
const mlflowPg = logMlflow(
  `postgresql+psycopg2://ckpt:${postgres.password}@/mlflow?host=${postgres.socketFolder}`,
  mlflowCount,
);
const n = (count) => count.toLocaleString('en-US');
table(
  `log ${n(points)} metric points from one process`,
  ['writer', 'rate', 'vs MLflow on the same database', 'target'],
  [
    [
      '@ckpt/tracker-sqlite',
      rate(sqliteRate),
      mlflowSqlite ? `${(sqliteRate / mlflowSqlite.rate).toFixed(1)}x` : '',
      `>= 500,000: ${target('SQLite logs >= 500,000 points/s', Math.round(sqliteRate).toLocaleString('en-US'), sqliteRate >= 500_000)}`,
    ],
    [
      '@ckpt/tracker-postgres',
      rate(pgRate),
      mlflowPg ? `${(pgRate / mlflowPg.rate).toFixed(1)}x` : 'MLflow not installable here',
      `>= 200,000 and >= 20x: ${target('PostgreSQL logs >= 200,000 points/s and >= 20x MLflow', `${Math.round(pgRate).toLocaleString('en-US')}/s`, pgRate >= 200_000 && (!mlflowPg || pgRate / mlflowPg.rate >= 20))}`,
    ],
    ['@ckpt/tracker-mysql (MariaDB)', rate(myRate), '', ''],
    [`SQLite, one INSERT per transaction (${n(naiveCount)} points)`, rate(naive), '', ''],
    mlflowSqlite
      ? [
          `MLflow ${mlflowSqlite.version} log_batch on SQLite (${n(mlflowCount)} points)`,
          rate(mlflowSqlite.rate),
          '1x',
          '',
        ]
      : ['MLflow on SQLite', 'not installable here', '', ''],
    mlflowPg
      ? [`MLflow ${mlflowPg.version} log_batch on PostgreSQL (${n(mlflowCount)} points)`, rate(mlflowPg.rate), '1x', '']
      : ['MLflow on PostgreSQL', 'not installable here', '', ''],
  ],
);

// --- 2. best checkpoints ----------------------------------------------------------------
/** Fills a server database with `checkpointCount` checkpoints over 100 experiments, in SQL (loading is not what is measured). */
function fillServer(sql, sequence) {
  sql(`INSERT INTO experiments (project, name, status, config, started_at)
       SELECT 'default', CONCAT('run-', i), 'running', '{}', 0 FROM ${sequence(100)}`);
  sql(`INSERT INTO checkpoints (experiment_id, checkpoint_id, path, format, size, sha256, epoch, step, created_at,
         is_best, is_latest, is_protected, status, tags)
       SELECT 1 + MOD(i, 100), CONCAT('ckpt-', i), CONCAT('/runs/ckpt-', i, '.safetensors'), 'safetensors', 1000 + i,
         '${'0'.repeat(64)}', MOD(i, 1000), i, i, 0, 0, 0, 'ok', '[]' FROM ${sequence(checkpointCount)}`);
  sql(`INSERT INTO checkpoint_metrics (checkpoint_row, name, value)
       SELECT i, 'val_loss', ABS(SIN(i * 7.1)) FROM ${sequence(checkpointCount)}`);
  sql(`INSERT INTO checkpoint_metrics (checkpoint_row, name, value)
       SELECT i, 'acc', ABS(COS(i)) FROM ${sequence(checkpointCount)}`);
}

async function bestTen(db, label, limit) {
  const times = [];
  let best;
  for (let i = 0; i < 50; i++) {
    const t = process.hrtime.bigint();
    best = await db.bestCheckpoints({ metric: 'val_loss', n: 10 });
    times.push(seconds(t));
  }
  const values = best.map((c) => c.metrics.val_loss);
  if (best.length !== 10 || values.some((v, k) => k > 0 && v < values[k - 1]))
    throw new Error(`${label}: wrong answer`);
  await db.close();
  return [
    label,
    `${(median(times) * 1000).toFixed(2)} ms`,
    `<= ${limit} ms: ${target(`best 10 of 100,000 checkpoints on ${label} <= ${limit} ms`, `${(median(times) * 1000).toFixed(2)} ms`, median(times) <= limit / 1000)}`,
  ];
}

const rows = [];
{
  const store = TrackingStore.open(join(root, 'checkpoints.db'));
  const experiments = Array.from({ length: 100 }, (_, i) => store.startExperiment({ name: `run-${i}` }).id);
  store.db.transaction(() => {
    for (let i = 0; i < checkpointCount; i++) {
      store.recordCheckpoint(experiments[i % 100], {
        id: `ckpt-${i}`,
        sequence: i,
        experiment: 'x',
        model: 'm',
        epoch: i % 1000,
        step: i,
        timestamp: new Date().toISOString(),
        file: `ckpt-${i}.safetensors`,
        path: `/runs/ckpt-${i}.safetensors`,
        format: 'safetensors',
        size: 1000 + i,
        sha256: '0'.repeat(64),
        metrics: { val_loss: Math.abs(Math.sin(i * 7.1)), acc: Math.abs(Math.cos(i)) },
        tags: [],
        isBest: false,
        isLatest: false,
        protected: false,
        status: 'ok',
      });
    }
  })();
  store.close();
  rows.push(await bestTen(await connectSqlite(join(root, 'checkpoints.db')), '@ckpt/tracker-sqlite', 5));
}
{
  const url = postgres.createDatabase('bench_best');
  await (await connectPostgres(url)).close(); // creates the tables
  fillServer(
    (text) => postgres.sql('bench_best', text),
    (count) => `generate_series(1, ${count}) AS i`,
  );
  postgres.sql('bench_best', 'ANALYZE');
  rows.push(await bestTen(await connectPostgres(url), '@ckpt/tracker-postgres', 10));
}
{
  const url = mariadb.createDatabase('bench_best');
  await (await connectMysql(url)).close();
  fillServer(
    (text) => mariadb.sql('bench_best', text),
    (count) => `(SELECT seq AS i FROM seq_1_to_${count}) AS s`,
  );
  mariadb.sql('bench_best', 'ANALYZE TABLE checkpoint_metrics, checkpoints');
  rows.push(await bestTen(await connectMysql(url), '@ckpt/tracker-mysql (MariaDB)', 10));
}
table(`best 10 of ${n(checkpointCount)} checkpoints by val_loss (median of 50)`, ['tracker', 'time', 'target'], rows);

await mariadb.stop();
postgres.stop();
rmSync(root, { recursive: true, force: true });
