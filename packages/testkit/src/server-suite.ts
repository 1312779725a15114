/**
 * What a tracker over a database server must survive, proved against a real
 * server the caller starts: several writer processes on one database (two on
 * one series), a writer killed with SIGKILL mid-batch, the server restarting
 * in the middle of a run, a server gone for longer than the retries, batch
 * keys written once, and a typed error for each way of naming a database
 * wrongly. Call it at the top level of a vitest test file:
 *
 *     describeTrackerServer({
 *       name: 'postgres',
 *       module: '@ckpt/tracker-postgres',
 *       start: async () => startPostgres(),
 *     });
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type ConnectTracking, DatabaseError, type TrackingDatabase, UnsupportedError } from '@ckpt/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointRecord } from './tracker-suite.js';

export interface TrackerServer {
  /** Creates an empty database; returns its URL (with credentials). */
  createDatabase(name: string): string;
  /** The URL of database `name` (which may not exist). */
  url(name: string): string;
  /** Stops the server, dropping its connections; its data stays. */
  halt(): void | Promise<void>;
  /** Runs SQL text (several statements) in database `name`, as an administrator. */
  sql(name: string, text: string): string;
  /** Starts it again on the same data and address. */
  resume(): void | Promise<void>;
  stop(): void | Promise<void>;
}

export interface ServerSuiteOptions {
  name: string;
  /** The tracker package (or file URL) whose `connect` opens `url`s; child processes import it too. */
  module: string;
  start: () => Promise<TrackerServer> | TrackerServer;
  /**
   * SQL that builds a database at schema version 1 of the tracker, holding
   * project `vision`, experiment `resnet` (completed; tags baseline and v1;
   * params seed 7 and layers [64, 64]; loss 1, 0.5, 0.25 at steps 0-2; acc
   * 0.5, 0.75 at steps 0-1). The suite checks it upgrades in place.
   */
  versionOne?: string;
}

const writer = fileURLToPath(new URL('./servers/writer.js', import.meta.url));

interface Writer {
  exit: Promise<number | null>;
  acked: () => number;
  kill: () => void;
  /** Resolves once `acked() >= n`. */
  ackedAtLeast: (n: number) => Promise<void>;
}

function startWriter(module: string, url: string, job: Record<string, unknown>): Writer {
  const child = spawn(process.execPath, [writer, module, url, JSON.stringify(job)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let acked = 0;
  let stderr = '';
  const waiting: Array<[number, () => void]> = [];
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    for (const match of text.matchAll(/acked (\d+)/g)) acked = Math.max(acked, Number(match[1]));
    for (const [n, resolve] of waiting.splice(0))
      if (acked >= n) resolve();
      else waiting.push([n, resolve]);
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const exit = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      if (code !== 0 && code !== null) process.stderr.write(stderr);
      resolve(code);
    }),
  );
  return {
    exit,
    acked: () => acked,
    kill: () => child.kill('SIGKILL'),
    ackedAtLeast: (n) => (acked >= n ? Promise.resolve() : new Promise((resolve) => waiting.push([n, resolve]))),
  };
}

async function pointsOf(db: TrackingDatabase, experiment: string, series: string) {
  const id = (await db.getExperiment(experiment)).id;
  const history = await db.metricHistory(id, series);
  const summary = (await db.metrics(id)).find((m) => m.name === series);
  return { history, count: summary?.count ?? 0 };
}

export function describeTrackerServer(options: ServerSuiteOptions): void {
  let server: TrackerServer;
  let connect: ConnectTracking;
  let databases = 0;
  const fresh = () => server.createDatabase(`robust_${++databases}`);
  beforeAll(async () => {
    server = await options.start();
    ({ connect } = (await import(options.module)) as { connect: ConnectTracking });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  describe(`tracker on a database server: ${options.name}`, () => {
    it('four writer processes at once, two on one series, lose nothing and duplicate nothing', async () => {
      const url = fresh();
      const points = 20_000;
      const jobs = [
        { experiment: 'a', series: 'loss', points, batch: 2_000, stepOffset: 0 },
        { experiment: 'b', series: 'loss', points, batch: 2_500, stepOffset: 0 },
        { experiment: 'shared', series: 'loss', points, batch: 1_000, stepOffset: 0 },
        { experiment: 'shared', series: 'loss', points, batch: 3_000, stepOffset: points },
      ];
      const writers = jobs.map((job) => startWriter(options.module, url, job));
      expect(await Promise.all(writers.map((w) => w.exit))).toEqual([0, 0, 0, 0]);
      const db = await connect(url);
      try {
        for (const name of ['a', 'b']) {
          const { history, count } = await pointsOf(db, name, 'loss');
          expect(count).toBe(points);
          expect(history.map((p) => p.step)).toEqual(Array.from({ length: points }, (_, i) => i));
        }
        const shared = await pointsOf(db, 'shared', 'loss');
        expect(shared.count).toBe(2 * points);
        expect(shared.history.map((p) => p.step)).toEqual(Array.from({ length: 2 * points }, (_, i) => i));
        expect((await db.experiments()).total).toBe(3); // the two writers of "shared" found one experiment
      } finally {
        await db.close();
      }
    }, 180_000);

    it('a writer killed with SIGKILL mid-batch leaves whole batches only, every acknowledged one kept', async () => {
      const url = fresh();
      const batch = 5_000;
      for (let round = 0; round < 3; round++) {
        const experiment = `killed-${round}`;
        const w = startWriter(options.module, url, {
          experiment,
          series: 'loss',
          points: 1_000_000,
          batch,
          stepOffset: 0,
        });
        await w.ackedAtLeast((round + 2) * batch);
        await new Promise((resolve) => setTimeout(resolve, round * 15)); // land inside different moments of a batch
        w.kill();
        await w.exit;
        const db = await connect(url);
        try {
          const { history, count } = await pointsOf(db, experiment, 'loss');
          expect(history.length).toBe(count); // the summary matches the rows
          expect(count % batch).toBe(0); // no partial batch
          expect(count).toBeGreaterThanOrEqual(w.acked()); // nothing acknowledged lost
          expect(history.map((p) => p.step)).toEqual(Array.from({ length: count }, (_, i) => i));
        } finally {
          await db.close();
        }
      }
    }, 180_000);

    it('a script that ends without close() still stores its last points, and exits', async () => {
      const url = fresh();
      const w = startWriter(options.module, url, {
        experiment: 'forgetful',
        series: 'loss',
        points: 2_345,
        batch: 1_000,
        stepOffset: 0,
        close: false,
      });
      expect(await w.exit).toBe(0);
      const db = await connect(url);
      try {
        const { history } = await pointsOf(db, 'forgetful', 'loss');
        expect(history.length).toBe(2_345);
      } finally {
        await db.close();
      }
    }, 60_000);

    it('the server restarting mid-run: the tracker reconnects and loses nothing it acknowledged, writes nothing twice', async () => {
      const url = fresh();
      const db = await connect(url, { maxBuffered: 1_000, flushIntervalMs: 0, retryForMs: 60_000 });
      try {
        const e = await db.startExperiment({ name: 'restarted' });
        let logged = 0;
        const log = async (n: number) => {
          for (let i = 0; i < n; i++) {
            const pending = db.logMetric(e.id, 'loss', Math.random(), logged++);
            if (pending) await pending;
          }
        };
        await log(5_500);
        await db.flush();
        await server.halt();
        const during = log(3_000).then(() => db.flush()); // writes while the server is down
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        await server.resume();
        await during;
        await log(1_500);
        await db.endExperiment(e.id, 'completed');
        const { history, count } = await pointsOf(db, 'restarted', 'loss');
        expect(count).toBe(logged);
        expect(history.map((p) => p.step)).toEqual(Array.from({ length: logged }, (_, i) => i));
        expect((await db.getExperiment(e.id)).status).toBe('completed');
      } finally {
        await db.close();
      }
    }, 180_000);

    it('a server gone longer than the retries: flush fails with CKPT_DATABASE_UNREACHABLE, keeps the points, and writes them once it is back', async () => {
      const url = fresh();
      const db = await connect(url, { maxBuffered: 100_000, flushIntervalMs: 0, retryForMs: 300 });
      try {
        const e = await db.startExperiment({ name: 'patient' });
        for (let i = 0; i < 2_000; i++) db.logMetric(e.id, 'loss', i, i);
        await db.flush();
        await server.halt();
        for (let i = 2_000; i < 3_000; i++) db.logMetric(e.id, 'loss', i, i);
        const failure = await db.flush().then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(failure).toBeInstanceOf(DatabaseError);
        expect((failure as DatabaseError).code).toBe('CKPT_DATABASE_UNREACHABLE');
        expect(db.buffered).toBe(1_000);
        await server.resume();
        await db.flush();
        expect(db.buffered).toBe(0);
        const { history } = await pointsOf(db, 'patient', 'loss');
        expect(history.map((p) => p.value)).toEqual(Array.from({ length: 3_000 }, (_, i) => i));
      } finally {
        await db.close();
      }
    }, 120_000);

    it('a batch whose key is already stored is not written again (how a retried commit stays single)', async () => {
      const url = fresh();
      const keys = ['batch-one', 'batch-one', 'batch-two'];
      const db = await connect(url, { flushIntervalMs: 0, batchKey: () => keys.shift() as string });
      try {
        const e = await db.startExperiment({ name: 'keys' });
        db.logMetric(e.id, 'loss', 1, 0);
        await db.flush(); // batch-one: written
        db.logMetric(e.id, 'loss', 2, 1);
        await db.flush(); // batch-one again: the server has it, so these points are taken as written
        db.logMetric(e.id, 'loss', 3, 1);
        await db.flush(); // batch-two: written
        expect((await db.metricHistory(e.id, 'loss')).map((p) => [p.step, p.value])).toEqual([
          [0, 1],
          [1, 3],
        ]);
      } finally {
        await db.close();
      }
    });

    it.runIf(options.versionOne !== undefined)(
      'upgrades a database written by schema version 1 in place, data kept; refuses a newer one',
      async () => {
        const url = fresh();
        server.sql(`robust_${databases}`, options.versionOne as string);
        const readOnly = await connect(url, { readonly: true }).then(
          () => 'opened',
          (error: { message: string }) => error.message,
        );
        expect(readOnly).toMatch(/open it once for writing/); // read-only use never upgrades
        const db = await connect(url);
        try {
          expect(db.upgradedFrom).toBe(1);
          const e = await db.getExperiment('resnet', 'vision');
          expect(e).toMatchObject({ status: 'completed', tags: ['baseline', 'v1'], config: { lr: 0.001 } });
          expect({ ...(await db.params(e.id)) }).toEqual({ seed: 7, layers: [64, 64] });
          expect((await db.metricHistory(e.id, 'loss')).map((p) => p.value)).toEqual([1, 0.5, 0.25]);
          // What version 2 added works on the old rows: checkpoint records, batches continuing the series.
          db.logMetric(e.id, 'loss', 0.125);
          await db.recordCheckpoint(e.id, checkpointRecord('after-upgrade', { metrics: { loss: 0.125 } }));
          expect((await db.metricHistory(e.id, 'loss')).map((p) => [p.step, p.value])).toEqual([
            [0, 1],
            [1, 0.5],
            [2, 0.25],
            [3, 0.125],
          ]);
          expect((await db.bestCheckpoints({ metric: 'loss' })).map((c) => c.id)).toEqual(['after-upgrade']);
          const other = await db.startExperiment({ name: 'new', project: 'vision' });
          expect(other.id).not.toBe(e.id);
        } finally {
          await db.close();
        }
        server.sql(`robust_${databases}`, 'INSERT INTO ckpt_schema (version, applied_at) VALUES (99, 0)');
        const newer = await connect(url).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(newer).toBeInstanceOf(UnsupportedError);
        expect((newer as Error).message).toMatch(/schema version 99, newer than/);
      },
      60_000,
    );

    it('says what is wrong with a database name: malformed URL, wrong password, missing database, no server', async () => {
      const url = fresh();
      const failure = async (url: string) => {
        try {
          await (await connect(url)).close();
          return { code: 'opened', message: '' };
        } catch (error) {
          return { code: (error as DatabaseError).code, message: (error as Error).message };
        }
      };
      const password = /:\/\/[^:/@]+:([^@]+)@/.exec(url)?.[1] as string;
      const auth = await failure(url.replace(`:${password}@`, ':not-the-password@'));
      expect(auth.code).toBe('CKPT_DATABASE_AUTH');
      expect(auth.message).not.toContain('not-the-password');
      expect(auth.message).toContain('***');
      const missing = await failure(server.url('no_such_database'));
      expect(missing.code).toBe('CKPT_DATABASE_MISSING');
      expect(missing.message).not.toContain(password);
      const scheme = url.slice(0, url.indexOf(':'));
      expect((await failure(`${scheme}://user@host`)).code).toBe('CKPT_DATABASE_URL');
      expect((await failure(`${scheme}://user:pw@[bad/db`)).code).toBe('CKPT_DATABASE_URL');
      await server.halt();
      try {
        const down = await failure(url);
        expect(down.code).toBe('CKPT_DATABASE_UNREACHABLE');
        expect(down.message).not.toContain(password);
      } finally {
        await server.resume();
      }
    }, 60_000);
  });
}
