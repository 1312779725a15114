import { describeTracker } from '@ckpt/testkit';
import { SqliteTracking, TrackingStore } from '../../src/index.js';
import { databasePath } from '../support/helpers.js';

// A tracker with a bug: every 10,000th point is lost on its way to the database. The suite must catch it.
class LosesPoints extends SqliteTracking {
  #seen = 0;
  override logMetric(id: number, name: string, value: number, step?: number, timestamp?: number | Date): undefined {
    if (++this.#seen % 10_000 === 0) return undefined;
    return super.logMetric(id, name, value, step, timestamp);
  }
}

describeTracker({
  name: 'loses-points',
  newDatabase: () => databasePath(),
  connect: async (path) => new LosesPoints(TrackingStore.open(path)),
});
