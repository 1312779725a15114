#!/usr/bin/env node
// @ckpt/tracker-sqlite: metric logging and checkpoint queries, in one run.
//
//   node tools/bench/tracker.mjs [--points 1000000] [--checkpoints 100000] [--dir /tmp/ckpt-bench]
//
// 1. Log 1,000,000 metric points (10 series) through the batched tracker, against a
//    naive loop of one INSERT per transaction (better-sqlite3, same schema) and, when it
//    installs from PyPI, MLflow's SQLAlchemy store with log_batch (1,000 metrics a call).
// 2. The best 10 of 100,000 checkpoints by a metric.
// Targets (issue 6): >= 500,000 points/s batched; best 10 of 100,000 in <= 5 ms.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ExperimentTracker, TrackingStore } from '@ckpt/tracker-sqlite';
import { machine, median, table, verdict } from './lib.mjs';

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

console.log(`# tracker-sqlite (${machine()})`);

// --- 1. logging ---------------------------------------------------------------------
const series = Array.from({ length: 10 }, (_, i) => `metric_${i}`);

function logBatched() {
  const tracker = ExperimentTracker.open({ database: join(root, 'batched.db'), name: 'bench' });
  const start = process.hrtime.bigint();
  for (let i = 0; i < points; i++) tracker.logMetric(series[i % 10], Math.sin(i), Math.floor(i / 10));
  tracker.flush();
  const elapsed = seconds(start);
  tracker.end();
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
      spawnSync(join(mlflowVenv, 'bin/pip'), ['install', '-q', 'mlflow-skinny', 'sqlalchemy', 'alembic'], {
        stdio: 'inherit',
      });
    if (pip?.status !== 0) return undefined;
  }
  return python;
}

function logMlflow(count) {
  const python = mlflowPython();
  if (!python) return undefined;
  const script = `
import json, math, sys, time
from mlflow.entities import Metric
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
store = SqlAlchemyStore("sqlite:///${join(root, 'mlflow.db')}", "${join(root, 'mlflow-artifacts')}")
experiment = store.create_experiment("bench")
run = store.create_run(experiment, "bench", int(time.time() * 1000), [], "bench")
count = ${count}
names = [f"metric_{i}" for i in range(10)]
now = int(time.time() * 1000)
start = time.perf_counter()
for base in range(0, count, 1000):
    store.log_batch(run.info.run_id, [Metric(names[i % 10], math.sin(i), now, i // 10) for i in range(base, min(base + 1000, count))], [], [])
print(json.dumps({"rate": count / (time.perf_counter() - start), "version": __import__("mlflow").__version__}))
`;
  const result = spawnSync(python, ['-c', script], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (result.status !== 0) {
    console.log(`MLflow failed: ${result.stderr.split('\n').slice(-3).join(' ')}`);
    return undefined;
  }
  return JSON.parse(result.stdout.trim().split('\n').at(-1));
}

const batched = logBatched();
const naiveCount = 20_000;
const naive = logNaive(naiveCount);
const mlflowCount = 100_000;
const mlflow = logMlflow(mlflowCount);
const rate = (r) => `${Math.round(r).toLocaleString('en-US')} points/s`;
table(
  `log ${points.toLocaleString('en-US')} metric points`,
  ['writer', 'rate', 'batched tracker is', 'target'],
  [
    ['@ckpt/tracker-sqlite, batched', rate(batched), '1x', verdict(batched >= 500_000)],
    [
      `one INSERT per transaction (${naiveCount.toLocaleString('en-US')} points)`,
      rate(naive),
      `${(batched / naive).toFixed(1)}x faster`,
      '',
    ],
    mlflow
      ? [
          `MLflow ${mlflow.version} SqlAlchemyStore.log_batch (${mlflowCount.toLocaleString('en-US')} points)`,
          rate(mlflow.rate),
          `${(batched / mlflow.rate).toFixed(1)}x faster`,
          '',
        ]
      : ['MLflow', 'not installable here', '', ''],
  ],
);

// --- 2. best checkpoints ----------------------------------------------------------------
{
  const store = TrackingStore.open(join(root, 'checkpoints.db'));
  const experiments = Array.from({ length: 100 }, (_, i) => store.startExperiment({ name: `run-${i}` }).id);
  const start = process.hrtime.bigint();
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
  const recorded = seconds(start);
  const times = [];
  let best;
  for (let i = 0; i < 50; i++) {
    const t = process.hrtime.bigint();
    best = store.bestCheckpoints({ metric: 'val_loss', n: 10 });
    times.push(seconds(t));
  }
  const check = store.db.prepare("SELECT min(value) AS v FROM checkpoint_metrics WHERE name = 'val_loss'").get().v;
  if (best[0].metrics.val_loss !== check) throw new Error('wrong best checkpoint');
  table(
    `best 10 of ${checkpointCount.toLocaleString('en-US')} checkpoints by val_loss (median of 50)`,
    ['query', 'time', 'target'],
    [
      [
        'bestCheckpoints({ metric, n: 10 })',
        `${(median(times) * 1000).toFixed(2)} ms`,
        verdict(median(times) <= 0.005),
      ],
      [`(recording the ${checkpointCount.toLocaleString('en-US')} checkpoints)`, `${recorded.toFixed(2)} s`, ''],
    ],
  );
  store.close();
}
rmSync(root, { recursive: true, force: true });
