import type { CheckpointRecord } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import { ExperimentTracker, TrackingStore } from '../src/index.js';
import { databasePath } from './support/helpers.js';

function checkpoint(id: string, metrics: Record<string, number>, size = 100): CheckpointRecord {
  return {
    id,
    sequence: 1,
    experiment: 'x',
    model: 'm',
    epoch: 1,
    step: 10,
    timestamp: new Date(Date.UTC(2025, 0, 1)).toISOString(),
    file: `${id}.safetensors`,
    path: `/ckpt/${id}.safetensors`,
    format: 'safetensors',
    size,
    sha256: '0'.repeat(64),
    metrics,
    tags: ['t'],
    isBest: false,
    isLatest: true,
    protected: false,
    status: 'ok',
  };
}

/** Five experiments in two projects with known metrics and checkpoints. */
function populate() {
  const store = TrackingStore.open(databasePath());
  const specs = [
    {
      name: 'a',
      project: 'vision',
      tags: ['baseline'],
      config: { lr: 0.1, optimizer: { name: 'sgd' } },
      losses: [0.9, 0.5, 0.4],
    },
    {
      name: 'b',
      project: 'vision',
      tags: ['baseline', 'big'],
      config: { lr: 0.01, optimizer: { name: 'adam' } },
      losses: [0.8, 0.2, 0.25],
    },
    {
      name: 'c',
      project: 'vision',
      tags: ['big'],
      config: { lr: 0.01, optimizer: { name: 'sgd' } },
      losses: [0.7, 0.35],
    },
    { name: 'd', project: 'nlp', tags: [], config: { lr: 0.001, optimizer: { name: 'adam' } }, losses: [0.6, 0.1] },
    { name: 'e', project: 'nlp', tags: ['big'], config: { lr: 0.001, optimizer: { name: 'adam' } }, losses: [] },
  ];
  const trackers = specs.map((spec, i) => {
    const tracker = ExperimentTracker.open({ database: store, ...spec });
    for (const [step, loss] of spec.losses.entries()) tracker.logMetric('val_loss', loss, step);
    tracker.flush();
    // Distinct, known start times.
    store.db.prepare('UPDATE experiments SET started_at = ? WHERE id = ?').run(Date.UTC(2025, 0, 1 + i), tracker.id);
    return tracker;
  });
  trackers[0]?.end('completed');
  trackers[1]?.end('completed');
  trackers[2]?.end('failed');
  return { store, trackers };
}

describe('experiment queries', () => {
  it('filters by project, tags, status, config values, dates and a metric condition', () => {
    const { store } = populate();
    const names = (query: Parameters<typeof store.experiments>[0]) =>
      store.experiments({ sortBy: 'name', ...query }).experiments.map((e) => e.name);
    expect(names({ project: 'vision' })).toEqual(['a', 'b', 'c']);
    expect(names({ tag: 'big' })).toEqual(['b', 'c', 'e']);
    expect(names({ tags: ['big', 'baseline'] })).toEqual(['b']);
    expect(names({ status: 'running' })).toEqual(['d', 'e']);
    expect(names({ status: ['completed', 'failed'] })).toEqual(['a', 'b', 'c']);
    expect(names({ config: { 'optimizer.name': 'adam' } })).toEqual(['b', 'd', 'e']);
    expect(names({ config: { lr: 0.01, 'optimizer.name': 'sgd' } })).toEqual(['c']);
    expect(
      names({ startedAfter: new Date(Date.UTC(2025, 0, 2)), startedBefore: new Date(Date.UTC(2025, 0, 4)) }),
    ).toEqual(['b', 'c']);
    expect(names({ metric: { name: 'val_loss', of: 'min', lt: 0.3 } })).toEqual(['b', 'd']);
    expect(names({ metric: { name: 'val_loss', of: 'last', gte: 0.35 } })).toEqual(['a', 'c']);
    expect(names({ metric: { name: 'val_loss', of: 'max', lte: 0.7 } })).toEqual(['c', 'd']);
    store.close();
  });

  it('sorts by start, name, duration or a metric, and pages with a total', () => {
    const { store } = populate();
    const page = store.experiments({ sortBy: 'metric:val_loss', limit: 2, offset: 1 });
    expect(page.total).toBe(5);
    expect(page.experiments.map((e) => e.name)).toEqual(['b', 'c']); // d 0.1, b 0.2, c 0.35, a 0.4, then e (none)
    expect(store.experiments({ sortBy: 'metric:val_loss' }).experiments.map((e) => e.name)).toEqual([
      'd',
      'b',
      'c',
      'a',
      'e',
    ]);
    expect(store.experiments({ sortBy: 'metric:val_loss:max', order: 'desc' }).experiments[0]?.name).toBe('a');
    expect(store.experiments().experiments.map((e) => e.name)).toEqual(['e', 'd', 'c', 'b', 'a']); // newest first
    expect(store.experiments({ sortBy: 'started', order: 'asc', limit: 1 }).experiments[0]?.name).toBe('a');
    expect(() => store.experiments({ sortBy: 'colour' })).toThrow(/cannot sort experiments by "colour"/);
    expect(() => store.experiments({ config: { 'a;drop': 1 } })).toThrow(/dotted names/);
    store.close();
  });
});

describe('metric history', () => {
  it('downsamples into buckets that keep min, max and the last value', () => {
    const store = TrackingStore.open(databasePath());
    const tracker = ExperimentTracker.open({ database: store, name: 'curve' });
    for (let step = 0; step < 1000; step++) tracker.logMetric('loss', step === 500 ? 99 : 1000 - step, step);
    const buckets = store.metricBuckets(tracker.id, 'loss', 10);
    expect(buckets).toHaveLength(10);
    expect(buckets[0]).toEqual({ fromStep: 0, toStep: 99, count: 100, min: 901, max: 1000, last: 901 });
    expect(buckets[5]).toEqual({ fromStep: 500, toStep: 599, count: 100, min: 99, max: 499, last: 401 }); // the spike survives
    expect(store.metricBuckets(tracker.id, 'loss', 4, { fromStep: 100, toStep: 199 }).map((b) => b.count)).toEqual([
      25, 25, 25, 25,
    ]);
    expect(store.metricHistory(tracker.id, 'loss', { fromStep: 998 }).map((p) => p.value)).toEqual([2, 1]);
    expect(store.metricBuckets(tracker.id, 'nothing', 10)).toEqual([]);
    expect(() => store.metricBuckets(tracker.id, 'loss', 0)).toThrow(/positive integer/);
    store.close();
  });
});

describe('checkpoints', () => {
  it('keeps checkpoint records per experiment and finds the best N across experiments', () => {
    const { store, trackers } = populate();
    const [a, b, , d] = trackers;
    a?.recordCheckpoint(checkpoint('a1', { val_loss: 0.5, acc: 0.7 }, 1000));
    a?.recordCheckpoint(checkpoint('a2', { val_loss: 0.4, acc: 0.75 }, 1000));
    b?.recordCheckpoint(checkpoint('b1', { val_loss: 0.2, acc: 0.9 }, 2000));
    d?.recordCheckpoint(checkpoint('d1', { val_loss: 0.1, acc: Number.NaN }, 500));
    d?.recordCheckpoint(checkpoint('d2', { val_loss: 0.05 }, 500));
    d?.removeCheckpoint('x', 'd2');
    a?.updateCheckpoint({ ...checkpoint('a2', { val_loss: 0.4, acc: 0.75 }, 1000), isBest: true, tags: ['best'] });

    const best = store.bestCheckpoints({ metric: 'val_loss', n: 3 });
    expect(best.map((c) => [c.experiment.name, c.id])).toEqual([
      ['d', 'd1'],
      ['b', 'b1'],
      ['a', 'a2'],
    ]);
    expect(best[0]?.metrics.acc).toBeNaN();
    expect(store.bestCheckpoints({ metric: 'acc', mode: 'max', n: 1 })[0]?.id).toBe('b1');
    expect(store.bestCheckpoints({ metric: 'val_loss', project: 'vision', n: 1 })[0]?.id).toBe('b1');
    expect(store.checkpoints(a?.id as number).map((c) => [c.id, c.isBest, c.tags])).toEqual([
      ['a1', false, ['t']],
      ['a2', true, ['best']],
    ]);
    expect(
      store.checkpoints(d?.id as number, { includeDeleted: true }).map((c) => [c.id, Boolean(c.deletedAt)]),
    ).toEqual([
      ['d1', false],
      ['d2', true],
    ]);

    const stats = store.statistics();
    expect(stats.experiments).toEqual({ total: 5, byStatus: { completed: 2, failed: 1, running: 2 } });
    expect(stats.checkpoints.total).toBe(4);
    expect(stats.checkpoints.bytes).toBe(4500);
    expect(stats.checkpoints.byExperiment.find((r) => r.name === 'a')).toMatchObject({ count: 2, bytes: 2000 });
    expect(stats.durations.count).toBe(3);
    expect(stats.metrics).toMatchObject({ series: 4, points: 10 });
    expect(store.statistics({ project: 'nlp' }).experiments.total).toBe(2);
    store.close();
  });
});

describe('export', () => {
  it('exports an experiment as JSON and as CSV, keeping NaN and infinities', () => {
    const store = TrackingStore.open(databasePath());
    const tracker = ExperimentTracker.open({ database: store, name: 'exp, "quoted"', config: { lr: 0.1 } });
    tracker.logParams({ seed: 7 });
    tracker.logMetric('loss', 0.5, 0);
    tracker.logMetric('loss', Number.NaN, 1);
    tracker.logMetric('loss', Number.POSITIVE_INFINITY, 2);
    tracker.recordCheckpoint(checkpoint('c1', { loss: 0.5 }));
    const json = JSON.parse(store.export(tracker.id, 'json'));
    expect(json.experiment).toMatchObject({ name: 'exp, "quoted"', config: { lr: 0.1 } });
    expect(json.params).toEqual({ seed: 7 });
    expect(json.metrics.loss.map((p: { value: unknown }) => p.value)).toEqual([0.5, 'NaN', 'Infinity']);
    expect(json.checkpoints[0]).toMatchObject({ id: 'c1', sha256: '0'.repeat(64) });
    const csv = store.export(tracker.id, 'csv').trim().split('\n');
    expect(csv[0]).toBe('experiment,metric,step,value,timestamp');
    expect(csv.slice(1).map((line) => line.split(',').slice(2, 5).join(','))).toEqual([
      'loss,0,0.5',
      'loss,1,NaN',
      'loss,2,inf',
    ]);
    expect(csv[1]?.startsWith('"exp, ""quoted""",')).toBe(true);
    expect(() => store.export(tracker.id, 'xml' as never)).toThrow(/unknown export format/);
    store.close();
  });
});
