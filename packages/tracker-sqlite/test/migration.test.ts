import { copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UnsupportedError } from '@ckpt/core';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ExperimentTracker, SCHEMA_VERSION, TrackingStore } from '../src/index.js';
import { databasePath } from './support/helpers.js';

const fixture = fileURLToPath(new URL('./fixtures/v1.db', import.meta.url));

describe('schema migrations', () => {
  it('upgrades a version-1 database file and keeps its data', () => {
    const path = databasePath('v1');
    copyFileSync(fixture, path);
    const store = TrackingStore.open(path);
    expect(store.upgradedFrom).toBe(1);
    expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    const experiment = store.getExperiment('resnet-v1', 'vision');
    expect(experiment).toMatchObject({
      status: 'completed',
      tags: ['baseline'],
      config: { lr: 0.001, optimizer: { name: 'adam' } },
      host: undefined,
    });
    expect(store.params(experiment.id)).toEqual({ batch_size: 64 });
    // The summaries version 2 added were computed from the points.
    expect(store.metrics(experiment.id)).toEqual([
      { name: 'val_loss', count: 4, min: 0.5, max: 0.9, last: 0.7, lastStep: 3 },
    ]);
    expect(store.metricHistory(experiment.id, 'val_loss').map((p) => p.value)).toEqual([0.9, 0.5, Number.NaN, 0.7]);
    expect(store.experiments({ metric: { name: 'val_loss', lt: 0.6 } }).total).toBe(1);
    store.close();
    // And it keeps working: a new run resumes into it.
    const tracker = ExperimentTracker.open({ database: path, name: 'resnet-v1', project: 'vision' });
    tracker.logMetric('val_loss', 0.3);
    tracker.end();
    const again = TrackingStore.open(path);
    expect(again.upgradedFrom).toBe(SCHEMA_VERSION);
    expect(again.metrics(experiment.id)[0]).toMatchObject({ count: 5, min: 0.3, lastStep: 4 });
    again.close();
  });

  it('refuses a database written by a newer version, saying so', () => {
    const path = databasePath('future');
    TrackingStore.open(path).close();
    const db = new Database(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const error = (() => {
      try {
        TrackingStore.open(path);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as Error).message).toMatch(/schema version \d+, newer than this @ckpt\/tracker-sqlite knows/);
  });
});
