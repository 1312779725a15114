/**
 * The conformance suite for a tracking database (core's `TrackingDatabase`).
 * Call it at the top level of a vitest test file with a way to make a new,
 * empty database and to open one by URL:
 *
 *     describeTracker({
 *       name: 'postgres',
 *       newDatabase: async () => server.createDatabase(`t${++n}`),
 *       connect: (url) => connect(url),
 *     });
 *
 * Every test runs against a database of its own, through the public
 * contract only; docs/writing-a-tracker.md describes what it checks.
 */
import {
  type CheckpointRecord,
  ClosedError,
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  type TrackingDatabase,
} from '@ckpt/core';
import { afterEach, describe, expect, it } from 'vitest';

export interface TrackerSuiteOptions {
  /** Shown in the suite title. */
  name: string;
  /** Makes a new, empty database and returns what `connect` takes (a path or a URL). */
  newDatabase: () => Promise<string> | string;
  /** Opens (creating tables as needed) the database at `url`. */
  connect: (url: string) => Promise<TrackingDatabase>;
}

export function checkpointRecord(id: string, overrides: Partial<CheckpointRecord> = {}): CheckpointRecord {
  return {
    id,
    sequence: 1,
    experiment: 'e',
    model: 'm',
    epoch: 1,
    step: 100,
    timestamp: new Date('2026-01-02T03:04:05.000Z').toISOString(),
    file: `${id}.safetensors`,
    path: `/runs/${id}.safetensors`,
    format: 'safetensors',
    size: 1000,
    sha256: 'a'.repeat(64),
    metrics: { val_loss: 0.5 },
    tags: [],
    isBest: false,
    isLatest: false,
    protected: false,
    status: 'ok',
    ...overrides,
  };
}

export function describeTracker(options: TrackerSuiteOptions): void {
  const open: TrackingDatabase[] = [];
  /** A new database, closed after the test. */
  async function fresh(): Promise<{ db: TrackingDatabase; url: string }> {
    const url = await options.newDatabase();
    const db = await options.connect(url);
    open.push(db);
    return { db, url };
  }
  async function again(url: string): Promise<TrackingDatabase> {
    const db = await options.connect(url);
    open.push(db);
    return db;
  }
  afterEach(async () => {
    for (const db of open.splice(0)) await db.close().catch(() => undefined);
  });

  describe(`tracker conformance: ${options.name}`, () => {
    it('creates, finds and resumes experiments', async () => {
      const { db, url } = await fresh();
      expect(db.upgradedFrom).toBe(0);
      expect(db.location).not.toBe('');
      const password = /:\/\/[^:/@]+:([^@]+)@/.exec(url)?.[1];
      if (password) expect(db.location).not.toContain(password);
      const created = await db.startExperiment({
        name: 'resnet',
        project: 'vision',
        tags: ['b', 'a'],
        config: { optimizer: { name: 'adam', lr: 0.001 }, amp: true },
        description: 'first',
        gitCommit: 'c'.repeat(40),
        host: 'node-1',
      });
      expect(created).toMatchObject({
        name: 'resnet',
        project: 'vision',
        status: 'running',
        tags: ['a', 'b'],
        config: { optimizer: { name: 'adam', lr: 0.001 }, amp: true },
        description: 'first',
        gitCommit: 'c'.repeat(40),
        host: 'node-1',
        endedAt: undefined,
      });
      expect(created.startedAt).toBeInstanceOf(Date);
      expect(await db.getExperiment(created.id)).toEqual(created);
      expect(await db.getExperiment('resnet', 'vision')).toEqual(created);
      await db.endExperiment(created.id, 'failed');
      const resumed = await db.startExperiment({ name: 'resnet', project: 'vision', tags: ['c'], config: { seed: 1 } });
      expect(resumed.id).toBe(created.id);
      expect(resumed).toMatchObject({
        status: 'running',
        endedAt: undefined,
        tags: ['a', 'b', 'c'],
        config: { optimizer: { name: 'adam', lr: 0.001 }, amp: true, seed: 1 },
        description: 'first',
      });
      // Names are exact: case and Unicode matter.
      const other = await db.startExperiment({ name: 'ResNet', project: 'vision' });
      expect(other.id).not.toBe(created.id);
      const unicode = await db.startExperiment({ name: 'Lauf – Größe 🧪', project: 'vision' });
      expect((await db.getExperiment('Lauf – Größe 🧪', 'vision')).id).toBe(unicode.id);
      await expect(db.getExperiment(987654)).rejects.toBeInstanceOf(NotFoundError);
      await expect(db.getExperiment('missing', 'vision')).rejects.toBeInstanceOf(NotFoundError);
      await expect(db.startExperiment({ name: '  ' })).rejects.toBeInstanceOf(InvalidArgumentError);
    });

    it('ends experiments with a status and an end time, and refuses unknown statuses', async () => {
      const { db } = await fresh();
      const e = await db.startExperiment({ name: 'e' });
      const ended = await db.endExperiment(e.id, 'completed');
      expect(ended.status).toBe('completed');
      expect(ended.endedAt?.getTime()).toBeGreaterThanOrEqual(e.startedAt.getTime());
      const running = await db.endExperiment(e.id, 'running');
      expect(running).toMatchObject({ status: 'running', endedAt: undefined });
      await expect(db.endExperiment(e.id, 'exploded' as never)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(db.endExperiment(987654, 'completed')).rejects.toBeInstanceOf(NotFoundError);
    });

    it('adds and replaces tags; records params as JSON, a key logged again replaced', async () => {
      const { db } = await fresh();
      const e = await db.startExperiment({ name: 'e', tags: ['x'] });
      expect((await db.setTags(e.id, ['y', 'x'])).tags).toEqual(['x', 'y']);
      expect((await db.setTags(e.id, ['z'], { replace: true })).tags).toEqual(['z']);
      await db.logParams(e.id, { lr: 0.1, layers: [64, 64], nested: { a: true, b: null }, name: 'adam' });
      await db.logParams(e.id, { lr: 0.2, ['__proto__']: { polluted: true } });
      const params = await db.params(e.id);
      expect({ ...params }).toEqual({
        layers: [64, 64],
        lr: 0.2,
        name: 'adam',
        nested: { a: true, b: null },
        ['__proto__']: { polluted: true },
      });
      expect(Object.getPrototypeOf(params)).toBe(null); // a mapping from data inherits nothing
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      await expect(db.logParams(987654, { a: 1 })).rejects.toBeInstanceOf(NotFoundError);
      await expect(db.logParams(e.id, { '': 1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    });

    it('stores metric points exactly: NaN, infinities, implicit steps, out-of-order steps', async () => {
      const { db } = await fresh();
      const e = await db.startExperiment({ name: 'e' });
      const t = new Date('2026-03-04T05:06:07.089Z');
      db.logMetric(e.id, 'loss', 1.5, 0, t);
      db.logMetric(e.id, 'loss', Number.NaN, 1, t);
      db.logMetric(e.id, 'loss', Number.POSITIVE_INFINITY, 2, t);
      db.logMetric(e.id, 'loss', Number.NEGATIVE_INFINITY, 3, t);
      db.logMetric(e.id, 'loss', 0.25, undefined, t); // implicit: step 4
      db.logMetric(e.id, 'loss', 7, 2, t.getTime()); // an earlier step, logged later
      await db.flush();
      db.logMetric(e.id, 'loss', -2.5, undefined, t); // implicit across batches: step 5
      expect(db.buffered).toBe(1);
      const history = await db.metricHistory(e.id, 'loss');
      expect(db.buffered).toBe(0);
      expect(history.map((p) => [p.step, p.value])).toEqual([
        [0, 1.5],
        [1, Number.NaN],
        [2, Number.POSITIVE_INFINITY],
        [2, 7],
        [3, Number.NEGATIVE_INFINITY],
        [4, 0.25],
        [5, -2.5],
      ]);
      expect(history.every((p) => p.timestamp.getTime() === t.getTime())).toBe(true);
      expect((await db.metricHistory(e.id, 'loss', { fromStep: 2, toStep: 3 })).map((p) => p.step)).toEqual([2, 2, 3]);
      const [summary] = await db.metrics(e.id);
      expect(summary).toEqual({
        name: 'loss',
        count: 7,
        min: Number.NEGATIVE_INFINITY,
        max: Number.POSITIVE_INFINITY,
        last: -2.5,
        lastStep: 5,
      });
      expect(await db.metricHistory(e.id, 'never logged')).toEqual([]);
      expect(() => db.logMetric(e.id, '', 1)).toThrow(InvalidArgumentError);
      expect(() => db.logMetric(e.id, 'loss', '1' as never)).toThrow(/must be a number/);
      expect(() => db.logMetric(e.id, 'loss', 1, -1)).toThrow(/non-negative integer/);
      expect(() => db.logMetric(e.id, 'loss', 1, 1.5)).toThrow(InvalidArgumentError);
    });

    it('writes many points in batches and loses none; points of an unknown experiment are reported', async () => {
      const { db } = await fresh();
      const a = await db.startExperiment({ name: 'a' });
      const b = await db.startExperiment({ name: 'b' });
      const n = 30_000;
      for (let i = 0; i < n; i++) {
        const pending = db.logMetric(i % 3 === 0 ? b.id : a.id, `m${i % 4}`, i, Math.floor(i / 4));
        if (pending) await pending;
      }
      await db.flush();
      const stats = await db.statistics();
      expect(stats.metrics.points).toBe(n);
      expect(stats.metrics.series).toBe(8);
      const summaries = await db.metrics(a.id);
      expect(summaries.reduce((sum, m) => sum + m.count, 0)).toBe(n - n / 3);
      const m1 = await db.metricHistory(a.id, 'm1');
      expect(m1.length).toBe(summaries.find((m) => m.name === 'm1')?.count);
      expect(m1.every((p, k) => k === 0 || p.step >= (m1[k - 1]?.step ?? 0))).toBe(true);

      db.logMetric(987654, 'ghost', 1, 0);
      db.logMetric(a.id, 'kept', 1, 0);
      await expect(db.flush()).rejects.toBeInstanceOf(NotFoundError);
      await db.flush(); // the failure is reported once; what could be written was
      expect((await db.metricHistory(a.id, 'kept')).length).toBe(1);
    });

    it('downsamples a metric into buckets with min, max and last, so a spike survives', async () => {
      const { db } = await fresh();
      const e = await db.startExperiment({ name: 'e' });
      for (let step = 0; step < 1000; step++) db.logMetric(e.id, 'loss', step === 555 ? 100 : 1 / (step + 1), step);
      const buckets = await db.metricBuckets(e.id, 'loss', 10);
      expect(buckets).toHaveLength(10);
      expect(buckets.reduce((sum, bucket) => sum + bucket.count, 0)).toBe(1000);
      expect(buckets[0]).toMatchObject({ fromStep: 0, toStep: 99, min: 1 / 100, max: 1, last: 1 / 100 });
      expect(buckets[5]).toMatchObject({ fromStep: 500, toStep: 599, max: 100 });
      expect(buckets[9]?.last).toBe(1 / 1000);
      const ranged = await db.metricBuckets(e.id, 'loss', 2, { fromStep: 100, toStep: 199 });
      expect(ranged.map((bucket) => [bucket.fromStep, bucket.toStep, bucket.count])).toEqual([
        [100, 149, 50],
        [150, 199, 50],
      ]);
      expect(await db.metricBuckets(e.id, 'none', 5)).toEqual([]);
      await expect(db.metricBuckets(e.id, 'loss', 0)).rejects.toBeInstanceOf(InvalidArgumentError);
    });

    it('records, updates and removes checkpoints; finds the best across experiments', async () => {
      const { db } = await fresh();
      const a = await db.startExperiment({ name: 'a', project: 'p' });
      const b = await db.startExperiment({ name: 'b', project: 'q' });
      await db.recordCheckpoint(a.id, checkpointRecord('a1', { metrics: { val_loss: 0.4, acc: Number.NaN } }));
      await db.recordCheckpoint(a.id, checkpointRecord('a2', { metrics: { val_loss: 0.2 }, tags: ['best'] }));
      await db.recordCheckpoint(b.id, checkpointRecord('b1', { metrics: { val_loss: 0.3 }, step: 5 }));
      await db.recordCheckpoint(b.id, checkpointRecord('b2', { metrics: { val_loss: 0.1 }, size: 5 }));
      await db.recordCheckpoint(
        a.id,
        checkpointRecord('a2', { metrics: { val_loss: 0.2 }, isBest: true, protected: true }),
      );
      const listed = await db.checkpoints(a.id);
      expect(listed.map((c) => c.id)).toEqual(['a1', 'a2']);
      expect(listed[1]).toMatchObject({
        experiment: { id: a.id, name: 'a', project: 'p' },
        path: '/runs/a2.safetensors',
        format: 'safetensors',
        size: 1000,
        sha256: 'a'.repeat(64),
        epoch: 1,
        step: 100,
        isBest: true,
        isLatest: false,
        protected: true,
        status: 'ok',
        tags: [],
        deletedAt: undefined,
      });
      expect(listed[1]?.createdAt.toISOString()).toBe('2026-01-02T03:04:05.000Z');
      expect(Number.isNaN(listed[0]?.metrics.acc)).toBe(true);
      const best = async (query: Parameters<TrackingDatabase['bestCheckpoints']>[0]) =>
        (await db.bestCheckpoints(query)).map((c) => c.id);
      expect(await best({ metric: 'val_loss' })).toEqual(['b2', 'a2', 'b1', 'a1']);
      expect(await best({ metric: 'val_loss', mode: 'max', n: 2 })).toEqual(['a1', 'b1']);
      expect(await best({ metric: 'val_loss', project: 'p' })).toEqual(['a2', 'a1']);
      expect(await best({ metric: 'acc' })).toEqual([]); // NaN is no value
      await db.removeCheckpoint(b.id, 'b2');
      expect(await best({ metric: 'val_loss', n: 1 })).toEqual(['a2']);
      expect((await db.checkpoints(b.id)).map((c) => c.id)).toEqual(['b1']);
      const all = await db.checkpoints(b.id, { includeDeleted: true });
      expect(all.find((c) => c.id === 'b2')?.deletedAt).toBeInstanceOf(Date);
      await db.recordCheckpoint(b.id, checkpointRecord('b2', { metrics: { val_loss: 0.1 } }));
      expect((await db.checkpoints(b.id)).map((c) => c.id)).toEqual(['b1', 'b2']); // recorded again: live again
      await expect(db.bestCheckpoints({ metric: 'val_loss', n: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    });

    it('finds experiments by project, tags, status, config, start time and a metric condition; sorts and pages', async () => {
      const { db } = await fresh();
      const ids: Record<string, number> = {};
      const specs = [
        { name: 'r1', project: 'p', tags: ['x'], config: { opt: { lr: 0.001 }, amp: true, arch: 'resnet' }, loss: 0.5 },
        {
          name: 'r2',
          project: 'p',
          tags: ['x', 'y'],
          config: { opt: { lr: 0.01 }, amp: false, arch: 'vit' },
          loss: 0.2,
        },
        { name: 'r3', project: 'q', tags: ['y'], config: { opt: { lr: 0.001 }, arch: null }, loss: 0.9 },
        { name: 'r4', project: 'p', tags: [], config: { opt: { lr: 0.1 } }, loss: undefined },
      ];
      for (const spec of specs) {
        const e = await db.startExperiment({
          name: spec.name,
          project: spec.project,
          tags: spec.tags,
          config: spec.config,
        });
        ids[spec.name] = e.id;
        if (spec.loss !== undefined) {
          db.logMetric(e.id, 'val_loss', spec.loss + 0.3, 0);
          db.logMetric(e.id, 'val_loss', spec.loss, 1);
        }
        await new Promise((resolve) => setTimeout(resolve, 5)); // distinct start times
      }
      await db.flush();
      await db.endExperiment(ids.r1 as number, 'completed');
      await db.endExperiment(ids.r2 as number, 'failed');
      const names = async (query: Parameters<TrackingDatabase['experiments']>[0]) =>
        (await db.experiments(query)).experiments.map((e) => e.name);
      expect(await names({ project: 'p', sortBy: 'name' })).toEqual(['r1', 'r2', 'r4']);
      expect(await names({})).toEqual(['r4', 'r3', 'r2', 'r1']); // newest first
      expect(await names({ tag: 'x', sortBy: 'name' })).toEqual(['r1', 'r2']);
      expect(await names({ tags: ['x', 'y'] })).toEqual(['r2']);
      expect(await names({ status: 'running', sortBy: 'name' })).toEqual(['r3', 'r4']);
      expect(await names({ status: ['completed', 'failed'], sortBy: 'name' })).toEqual(['r1', 'r2']);
      expect(await names({ config: { 'opt.lr': 0.001 }, sortBy: 'name' })).toEqual(['r1', 'r3']);
      expect(await names({ config: { arch: 'vit' } })).toEqual(['r2']);
      expect(await names({ config: { amp: true } })).toEqual(['r1']);
      expect(await names({ config: { amp: false } })).toEqual(['r2']);
      expect(await names({ config: { arch: null }, sortBy: 'name' })).toEqual(['r3', 'r4']);
      const r3 = await db.getExperiment(ids.r3 as number);
      expect(await names({ startedAfter: r3.startedAt, sortBy: 'name' })).toEqual(['r3', 'r4']);
      expect(await names({ startedBefore: r3.startedAt.getTime(), sortBy: 'name' })).toEqual(['r1', 'r2']);
      expect(await names({ metric: { name: 'val_loss', lt: 0.6 }, sortBy: 'name' })).toEqual(['r1', 'r2']);
      expect(await names({ metric: { name: 'val_loss', of: 'max', gte: 1.2 } })).toEqual(['r3']);
      expect(await names({ metric: { name: 'val_loss', of: 'last', eq: 0.2 } })).toEqual(['r2']);
      expect(await names({ sortBy: 'metric:val_loss' })).toEqual(['r2', 'r1', 'r3', 'r4']); // no value: last
      expect(await names({ sortBy: 'metric:val_loss', order: 'desc' })).toEqual(['r3', 'r1', 'r2', 'r4']);
      expect(await names({ sortBy: 'name', order: 'desc', limit: 2, offset: 1 })).toEqual(['r3', 'r2']);
      const page = await db.experiments({ limit: 1 });
      expect(page.total).toBe(4);
      expect(page.experiments).toHaveLength(1);
      expect(await names({ sortBy: 'duration', status: ['completed', 'failed'] })).toHaveLength(2);
      await expect(db.experiments({ sortBy: 'colour' })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(db.experiments({ config: { "a') OR 1=1 --": 1 } })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(db.experiments({ limit: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    });

    it('pages through more experiments than one page holds', async () => {
      const { db } = await fresh();
      for (let i = 0; i < 120; i++) await db.startExperiment({ name: `run-${String(i).padStart(3, '0')}` });
      const first = await db.experiments({ sortBy: 'name' });
      expect(first.total).toBe(120);
      expect(first.experiments).toHaveLength(100); // the default page
      const rest = await db.experiments({ sortBy: 'name', offset: 100 });
      expect(rest.experiments.map((e) => e.name)).toEqual(
        Array.from({ length: 20 }, (_, i) => `run-${String(100 + i).padStart(3, '0')}`),
      );
    });

    it('reports statistics over the whole database or one project', async () => {
      const { db } = await fresh();
      const a = await db.startExperiment({ name: 'a', project: 'p' });
      const b = await db.startExperiment({ name: 'b', project: 'q' });
      db.logMetric(a.id, 'x', 1, 0);
      db.logMetric(a.id, 'x', 2, 1);
      db.logMetric(a.id, 'y', 2, 1);
      db.logMetric(b.id, 'x', 3, 0);
      await db.recordCheckpoint(a.id, checkpointRecord('c1', { size: 100 }));
      await db.recordCheckpoint(a.id, checkpointRecord('c2', { size: 50 }));
      await db.recordCheckpoint(b.id, checkpointRecord('c3', { size: 7 }));
      await db.removeCheckpoint(a.id, 'c2');
      await db.endExperiment(a.id, 'completed');
      const stats = await db.statistics();
      expect(stats.experiments).toEqual({ total: 2, byStatus: { completed: 1, running: 1 } });
      expect(stats.checkpoints).toEqual({
        total: 2,
        bytes: 107,
        byExperiment: [
          { id: a.id, name: 'a', count: 1, bytes: 100 },
          { id: b.id, name: 'b', count: 1, bytes: 7 },
        ],
      });
      expect(stats.durations.count).toBe(1);
      expect(stats.durations.mean).toBeGreaterThanOrEqual(0);
      expect(stats.metrics).toEqual({
        series: 3,
        points: 4,
        byExperiment: [
          { id: a.id, name: 'a', series: 2, points: 3 },
          { id: b.id, name: 'b', series: 1, points: 1 },
        ],
      });
      const q = await db.statistics({ project: 'q' });
      expect(q.experiments.total).toBe(1);
      expect(q.metrics.points).toBe(1);
      expect(q.durations).toEqual({ count: 0, mean: undefined, min: undefined, max: undefined });
    });

    it('exports an experiment as JSON and CSV', async () => {
      const { db } = await fresh();
      const e = await db.startExperiment({ name: 'exp, "quoted"', config: { lr: 0.1 } });
      await db.logParams(e.id, { seed: 3 });
      const t = new Date('2026-05-06T07:08:09.000Z');
      db.logMetric(e.id, 'loss', 0.5, 0, t);
      db.logMetric(e.id, 'loss', Number.NaN, 1, t);
      db.logMetric(e.id, 'loss', Number.POSITIVE_INFINITY, 2, t);
      await db.recordCheckpoint(e.id, checkpointRecord('c1'));
      const json = JSON.parse(await db.export(e.id, 'json'));
      expect(json.experiment.name).toBe('exp, "quoted"');
      expect(json.params).toEqual({ seed: 3 });
      expect(json.metrics.loss).toEqual([
        { step: 0, value: 0.5, timestamp: t.toISOString() },
        { step: 1, value: 'NaN', timestamp: t.toISOString() },
        { step: 2, value: 'Infinity', timestamp: t.toISOString() },
      ]);
      expect(json.checkpoints.map((c: { id: string }) => c.id)).toEqual(['c1']);
      expect((await db.export(e.id, 'csv')).split('\n')).toEqual([
        'experiment,metric,step,value,timestamp',
        `"exp, ""quoted""",loss,0,0.5,${t.toISOString()}`,
        `"exp, ""quoted""",loss,1,NaN,${t.toISOString()}`,
        `"exp, ""quoted""",loss,2,inf,${t.toISOString()}`,
        '',
      ]);
      await expect(db.export(e.id, 'xml' as never)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(db.export(987654)).rejects.toBeInstanceOf(NotFoundError);
    });

    it('imports an exported experiment whole (what `ckpt db copy` does), and refuses a name taken', async () => {
      const { db: source } = await fresh();
      const e = await source.startExperiment({ name: 'e', project: 'p', tags: ['t'], config: { a: { b: 1 } } });
      await source.logParams(e.id, { lr: 0.1 });
      for (let step = 0; step < 500; step++) source.logMetric(e.id, 'loss', 1 / (step + 1), step);
      source.logMetric(e.id, 'loss', Number.NaN, 500);
      await source.recordCheckpoint(e.id, checkpointRecord('c1', { metrics: { val_loss: 0.25 }, isBest: true }));
      await source.recordCheckpoint(e.id, checkpointRecord('c2'));
      await source.removeCheckpoint(e.id, 'c2');
      await source.endExperiment(e.id, 'completed');
      const exported = await source.exportExperiment(e.id);
      const { db: target } = await fresh();
      await target.startExperiment({ name: 'someone else' }); // ids differ between the two
      const imported = await target.importExperiment(exported);
      const copied = await target.exportExperiment(imported.id);
      const { id: _a, ...sourceExperiment } = exported.experiment;
      const { id: _b, ...targetExperiment } = copied.experiment;
      expect(targetExperiment).toEqual(sourceExperiment);
      expect(copied.params).toEqual(exported.params);
      expect(copied.metrics).toEqual(exported.metrics);
      const strip = (c: (typeof exported.checkpoints)[number]) => ({
        ...c,
        experiment: undefined,
        metrics: { ...c.metrics },
      });
      expect(copied.checkpoints.map(strip)).toEqual(exported.checkpoints.map(strip));
      expect(await target.metrics(imported.id)).toEqual(await source.metrics(e.id));
      expect((await target.bestCheckpoints({ metric: 'val_loss' })).map((c) => c.id)).toEqual(['c1']);
      await expect(target.importExperiment(exported)).rejects.toBeInstanceOf(ConflictError);
    });

    it('keeps everything across connections: a second one sees the first one’s writes, and reopening finds them', async () => {
      const { db, url } = await fresh();
      const second = await again(url);
      expect(second.upgradedFrom).toBeGreaterThan(0); // already at the current schema
      const e = await db.startExperiment({ name: 'shared' });
      db.logMetric(e.id, 'loss', 1, 0);
      await db.flush();
      expect((await second.metricHistory(e.id, 'loss')).map((p) => p.value)).toEqual([1]);
      const resumed = await second.startExperiment({ name: 'shared' });
      expect(resumed.id).toBe(e.id);
      second.logMetric(e.id, 'loss', 2, undefined);
      await second.close();
      await db.close();
      const reopened = await again(url);
      expect((await reopened.metricHistory(e.id, 'loss')).map((p) => [p.step, p.value])).toEqual([
        [0, 1],
        [1, 2],
      ]);
    });

    it('refuses every call after close, and close is idempotent', async () => {
      const { db } = await fresh();
      const e = await db.startExperiment({ name: 'e' });
      db.logMetric(e.id, 'loss', 1, 0);
      await db.close();
      expect(db.closed).toBe(true);
      await db.close();
      expect(() => db.logMetric(e.id, 'loss', 1)).toThrow(ClosedError);
      await expect(db.experiments()).rejects.toBeInstanceOf(ClosedError);
      await expect(db.startExperiment({ name: 'f' })).rejects.toBeInstanceOf(ClosedError);
    });
  });
}
