import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, NotFoundError } from '@ckpt/core';
import { type CheckpointEvents, HookManager } from '@ckpt/hooks';
import { describe, expect, it } from 'vitest';
import { ClosedError, ExperimentTracker, TrackingStore } from '../src/index.js';
import { databasePath } from './support/helpers.js';

describe('experiments', () => {
  it('creates an experiment with project, tags, config, host and git commit; resuming keeps its id', () => {
    const database = databasePath();
    const tracker = ExperimentTracker.open({
      database,
      name: 'resnet_training',
      project: 'image_classification',
      tags: ['baseline', 'resnet50'],
      config: { model: 'resnet50', learning_rate: 0.001, batch_size: 64 },
      description: 'first try',
      gitCommit: 'a'.repeat(40),
    });
    const created = tracker.experiment;
    expect(created).toMatchObject({
      name: 'resnet_training',
      project: 'image_classification',
      status: 'running',
      tags: ['baseline', 'resnet50'],
      config: { model: 'resnet50', learning_rate: 0.001, batch_size: 64 },
      description: 'first try',
      gitCommit: 'a'.repeat(40),
      endedAt: undefined,
    });
    expect(created.host).toBeTruthy();
    tracker.end('failed');
    expect(() => tracker.experiment).toThrow(ClosedError); // it opened the database, so it closed it

    const resumed = ExperimentTracker.open({
      database,
      name: 'resnet_training',
      project: 'image_classification',
      tags: ['retry'],
    });
    expect(resumed.id).toBe(created.id);
    expect(resumed.experiment).toMatchObject({
      status: 'running',
      tags: ['baseline', 'resnet50', 'retry'],
      endedAt: undefined,
    });
    resumed.end();
    const store = TrackingStore.open(database);
    const final = store.getExperiment('resnet_training', 'image_classification');
    expect(final.status).toBe('completed');
    expect(final.endedAt?.getTime()).toBeGreaterThanOrEqual(final.startedAt.getTime());
    store.close();
  });

  it('logs params and tags; refuses unknown experiments, bad names and bad statuses', () => {
    const store = TrackingStore.open(databasePath());
    const tracker = ExperimentTracker.open({ database: store, name: 'e' });
    tracker.logParams({ lr: 0.1, layers: [64, 64], nested: { a: true } });
    tracker.logParams({ lr: 0.2 });
    expect(store.params(tracker.id)).toEqual({ layers: [64, 64], lr: 0.2, nested: { a: true } });
    tracker.setTags(['x', 'y']);
    tracker.setTags(['z'], { replace: true });
    expect(tracker.experiment.tags).toEqual(['z']);
    expect(() => store.getExperiment(999)).toThrow(NotFoundError);
    expect(() => store.getExperiment('nope', 'default')).toThrow(/no experiment "nope" in project "default"/);
    expect(() => ExperimentTracker.open({ database: store, name: '' })).toThrow(InvalidArgumentError);
    expect(() => store.endExperiment(tracker.id, 'exploded' as never)).toThrow(/unknown experiment status/);
    expect(() => tracker.logMetric('loss', '0.5' as never)).toThrow(/must be a number/);
    expect(() => tracker.logMetric('loss', 0.5, -1)).toThrow(/non-negative integer/);
    store.close();
    expect(() => tracker.logMetric('loss', 1)).toThrow(ClosedError);
    expect(() => store.experiments()).toThrow(/is closed/);
    store.close(); // idempotent
  });

  it('emits experimentStart, metricLogged and experimentEnd to hooks', async () => {
    const hooks = new HookManager<CheckpointEvents>();
    const seen: string[] = [];
    hooks.register('watch', { handle: (event) => void seen.push(event) }, [
      'experimentStart',
      'metricLogged',
      'experimentEnd',
    ]);
    const tracker = ExperimentTracker.open({ database: databasePath(), name: 'hooked', hooks });
    tracker.logMetric('loss', 1, 0);
    tracker.end();
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual(['experimentStart', 'metricLogged', 'experimentEnd']);
  });
});

describe('metrics', () => {
  it('numbers steps when none is given, and keeps NaN and infinities faithfully', () => {
    const database = databasePath();
    const tracker = ExperimentTracker.open({ database, name: 'm' });
    tracker.logMetric('loss', 0.5);
    tracker.logMetric('loss', Number.NaN);
    tracker.logMetric('loss', Number.POSITIVE_INFINITY);
    tracker.logMetric('loss', Number.NEGATIVE_INFINITY, 10);
    tracker.logMetric('loss', 0.25);
    tracker.logMetrics({ acc: 0.9, f1: 0.8 }, 3);
    tracker.end();
    const store = TrackingStore.open(database);
    const history = store.metricHistory(tracker.id, 'loss');
    expect(history.map((p) => [p.step, p.value])).toEqual([
      [0, 0.5],
      [1, Number.NaN],
      [2, Number.POSITIVE_INFINITY],
      [10, Number.NEGATIVE_INFINITY],
      [11, 0.25],
    ]);
    expect(store.metrics(tracker.id)).toEqual([
      { name: 'acc', count: 1, min: 0.9, max: 0.9, last: 0.9, lastStep: 3 },
      { name: 'f1', count: 1, min: 0.8, max: 0.8, last: 0.8, lastStep: 3 },
      {
        name: 'loss',
        count: 5,
        min: Number.NEGATIVE_INFINITY,
        max: Number.POSITIVE_INFINITY,
        last: 0.25,
        lastStep: 11,
      },
    ]);
    store.close();
  });

  it('buffers points and writes them when full, on flush() and on close()', () => {
    const database = databasePath();
    const store = TrackingStore.open(database, { maxBuffered: 100, flushIntervalMs: 0 });
    const reader = TrackingStore.open(database);
    const tracker = ExperimentTracker.open({ database: store, name: 'b' });
    const count = () => reader.metrics(tracker.id)[0]?.count ?? 0;
    for (let i = 0; i < 99; i++) tracker.logMetric('x', i, i);
    expect(count()).toBe(0);
    expect(store.buffered).toBe(99);
    tracker.logMetric('x', 99, 99); // the 100th fills the buffer
    expect(count()).toBe(100);
    tracker.logMetric('x', 100, 100);
    tracker.flush();
    expect(count()).toBe(101);
    tracker.logMetric('x', 101, 101);
    store.close();
    expect(count()).toBe(102);
    reader.close();
  });

  it('writes on a timer', async () => {
    const database = databasePath();
    const store = TrackingStore.open(database, { flushIntervalMs: 20 });
    const tracker = ExperimentTracker.open({ database: store, name: 't' });
    tracker.logMetric('x', 1, 0);
    const reader = TrackingStore.open(database);
    expect(reader.metrics(tracker.id)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(reader.metrics(tracker.id)[0]?.count).toBe(1);
    reader.close();
    store.close();
  });

  it('writes what is buffered when the process exits without closing', () => {
    const database = databasePath();
    const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const script = `
      const { ExperimentTracker } = await import(${JSON.stringify(dist)});
      const t = ExperimentTracker.open({ database: ${JSON.stringify(database)}, name: 'exit', store: { flushIntervalMs: 0 } });
      for (let i = 0; i < 1234; i++) t.logMetric('x', i, i);
      process.exitCode = 0; // exits with points still buffered and no close()
    `;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    const store = TrackingStore.open(database);
    expect(store.metrics(store.getExperiment('exit').id)[0]?.count).toBe(1234);
    store.close();
  });
});
