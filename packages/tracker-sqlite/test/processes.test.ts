import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TrackingStore } from '../src/index.js';
import { databasePath } from './support/helpers.js';

const writer = fileURLToPath(new URL('./support/writer.mjs', import.meta.url));

function run(args: string[]) {
  const child = spawn(process.execPath, [writer, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return { child, stderr: () => stderr };
}

/** Every point of `x` is there once, with steps 0..n-1 and value = step. */
function expectContiguous(store: TrackingStore, experiment: string): number {
  const id = store.getExperiment(experiment).id;
  const row = store.db
    .prepare(
      `SELECT count(*) AS n, count(DISTINCT step) AS steps, min(step) AS lo, max(step) AS hi, sum(value = step) AS equal
       FROM metric_values WHERE experiment_id = ? AND name = 'x'`,
    )
    .get(id) as { n: number; steps: number; lo: number | null; hi: number | null; equal: number | null };
  expect(row.steps).toBe(row.n);
  if (row.n > 0) expect([row.lo, row.hi, row.equal]).toEqual([0, row.n - 1, row.n]);
  expect(store.metrics(id).find((m) => m.name === 'x')?.count ?? 0).toBe(row.n); // summary agrees
  return row.n;
}

describe('several processes on one database', () => {
  it('four writers at once, two of them on one experiment, lose nothing', async () => {
    const database = databasePath('shared');
    TrackingStore.open(database).close(); // create the schema once, as a first run would
    const writers = [
      run([database, 'alone-1', '20000', '500']),
      run([database, 'alone-2', '20000', '700']),
      run([database, 'shared', '15000', '300']),
      run([database, 'shared', '15000', '1000']),
    ];
    const codes = await Promise.all(writers.map(async (w) => (await once(w.child, 'exit'))[0]));
    expect(codes, writers.map((w) => w.stderr()).join('\n')).toEqual([0, 0, 0, 0]);
    const store = TrackingStore.open(database);
    expect(expectContiguous(store, 'alone-1')).toBe(20000);
    expect(expectContiguous(store, 'alone-2')).toBe(20000);
    // Two writers appending to one series: steps are decided inside each batch's transaction.
    const id = store.getExperiment('shared').id;
    const points = store.metricHistory(id, 'x');
    expect(points).toHaveLength(30000);
    expect(new Set(points.map((p) => p.step)).size).toBe(30000);
    expect(store.statistics().metrics.points).toBe(70000);
    store.close();
  }, 60_000);

  it('a writer killed with SIGKILL mid-batch leaves a consistent database, again and again', async () => {
    const database = databasePath('killed');
    let last = 0;
    for (let round = 0; round < 6; round++) {
      const { child, stderr } = run([database, 'victim', 'forever', '2000']);
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('flushed')) resolve();
        });
        child.once('exit', () => reject(new Error(`writer exited early: ${stderr()}`)));
      });
      await new Promise((resolve) => setTimeout(resolve, 5 + round * 7));
      child.kill('SIGKILL');
      await once(child, 'exit');
      const store = TrackingStore.open(database);
      expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
      const n = expectContiguous(store, 'victim');
      expect(n % 2000).toBe(0); // whole batches only
      expect(n).toBeGreaterThan(last);
      last = n;
      store.close();
    }
  }, 60_000);
});
