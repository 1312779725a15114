import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TrackingStore } from '../src/index.js';
import { databasePath } from './support/helpers.js';

const writer = fileURLToPath(new URL('./support/writer.mjs', import.meta.url));
const require = createRequire(import.meta.url);
const opener = fileURLToPath(new URL('./support/opener.mjs', import.meta.url));

function run(args: string[], script = writer) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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

  it('opening a new file that another process is writing waits for it, instead of failing with "database is locked"', async () => {
    // Switching a new file to WAL reads its header, then upgrades to a write; SQLite calls no busy handler for
    // an upgrade from a read, so while another process holds the write lock it failed at once.
    const database = databasePath('held');
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const Database = (await import(${JSON.stringify(require.resolve('better-sqlite3'))})).default;
         const db = new Database(process.argv[1]);
         db.exec('BEGIN IMMEDIATE'); // the write lock of a new file, still in rollback-journal mode
         process.stdout.write('held\\n');
         setTimeout(() => { db.exec('COMMIT'); db.close(); }, 700);`,
        database,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await once(holder.stdout, 'data');
    const store = TrackingStore.open(database, { busyTimeoutMs: 10_000 });
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    store.close();
    await once(holder, 'exit');
  }, 30_000);

  it('eight processes opening one database at once, while others write and one is killed, all open', async () => {
    // Fresh rounds start from no file (all eight create it at once: switching a new file to WAL is the
    // step that used to fail with "database is locked"); the others from a file two writers are logging into.
    const failures: string[] = [];
    // The race is rare (about 1 in 100 simultaneous creators on a 2-core machine); the test above forces it.
    // This one checks the whole open path under load: 8 fresh rounds and 4 with writers and a kill.
    for (let round = 0; round < 12; round++) {
      const database = databasePath(`open-${round}`);
      const fresh = round % 3 !== 2;
      const writers = fresh
        ? []
        : [run([database, 'steady', 'forever', '500']), run([database, 'victim', 'forever', '2000'])];
      if (!fresh) await new Promise((resolve) => setTimeout(resolve, 150)); // the writers have the file open
      const start = Date.now() + 700; // every opener is loaded and spinning by then
      const openers = Array.from({ length: 8 }, () => run([database, fresh ? '1' : '4', String(start)], opener));
      for (const o of openers) o.child.stdout.resume();
      const victim = writers[1];
      if (victim) setTimeout(() => victim.child.kill('SIGKILL'), 720);
      const codes = await Promise.all(openers.map(async (o) => (await once(o.child, 'exit'))[0]));
      for (const [i, code] of codes.entries()) if (code !== 0) failures.push(`round ${round}: ${openers[i]?.stderr()}`);
      for (const w of writers) w.child.kill('SIGKILL');
      await Promise.all(
        writers.map((w) => (w.child.exitCode === null && w.child.signalCode === null ? once(w.child, 'exit') : null)),
      );
      const store = TrackingStore.open(database);
      expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(store.experiments({ limit: 100 }).experiments.filter((e) => e.name.startsWith('opener-'))).toHaveLength(8);
      store.close();
    }
    expect(failures).toEqual([]);
  }, 120_000);
});
