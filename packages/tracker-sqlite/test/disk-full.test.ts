// A full disk under the SQLite tracker (see docs/formats-and-safety.md,
// "Faults"): the database lives on a tmpfs of a few megabytes that the test
// fills. A batch of metric points fails with a typed error naming the
// database, keeps the points for the next flush, leaves every earlier record
// intact, and is written once space is freed.
import { join } from 'node:path';
import { CkptError } from '@ckpt/core';
import { faultsUnavailable, type SmallDisk, smallDisk } from '@ckpt/testkit/faults';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TrackingStore } from '../src/index.js';

const unavailable = faultsUnavailable();

describe.skipIf(unavailable)('a full disk under the SQLite tracker', () => {
  let disk: SmallDisk;
  let store: TrackingStore;
  let id: number;

  beforeEach(() => {
    disk = smallDisk(4 << 20);
    store = TrackingStore.open(join(disk.path, 'runs.db'), { flushIntervalMs: 0 });
    id = store.startExperiment({ name: 'full', project: 'p' }).id;
    for (let step = 0; step < 100; step++) store.logMetric(id, 'loss', 1 / (step + 1), step);
    store.flush();
    store.logParams(id, { lr: 0.1 });
  });

  afterEach(() => {
    try {
      store.close();
    } catch {
      // closing flushes; on a still-full disk it may fail, which the tests check themselves
    }
    disk.close();
  });

  it('a metric batch fails typed, keeps its points, and is written once space is freed', () => {
    disk.fill(0);
    // Enough points that the batches need new pages (the WAL grows) whatever space SQLite kept.
    // A push that fills the buffer writes a batch, so logging itself reports the full disk.
    let error: unknown;
    let failures = 0;
    for (let step = 100; step < 20_100; step++) {
      try {
        store.logMetric(id, 'loss', 1 / (step + 1), step);
      } catch (e) {
        error ??= e;
        failures++;
      }
    }
    // A failed batch is retried once another buffer's worth has come, not on every point.
    expect(failures).toBe(2);
    expect(error).toBeInstanceOf(CkptError);
    expect((error as CkptError).code).toBe('CKPT_NO_SPACE');
    expect((error as CkptError).message).toContain(disk.path);
    expect(store.buffered).toBeGreaterThan(0);

    disk.free();
    store.flush();
    expect(store.buffered).toBe(0);
    const history = store.metricHistory(id, 'loss');
    expect(history).toHaveLength(20_100);
    expect(history[0]?.value).toBe(1);
    expect(store.params(id)).toEqual({ lr: 0.1 });
    expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
  });

  it('an experiment started on a full disk fails typed and leaves the earlier ones intact', () => {
    disk.fill(0);
    const error = (() => {
      try {
        for (let i = 0; i < 200; i++) store.startExperiment({ name: `run-${i}-${'x'.repeat(2000)}`, project: 'p' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(CkptError);
    expect((error as CkptError).code).toBe('CKPT_NO_SPACE');
    disk.free();
    expect(store.getExperiment(id).name).toBe('full');
    expect(store.metricHistory(id, 'loss')).toHaveLength(100);
    expect(store.startExperiment({ name: 'after', project: 'p' }).name).toBe('after');
  });
});
