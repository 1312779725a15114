import type { ExperimentQuery } from '@ckpt/core';
import { describeTracker } from '@ckpt/testkit';
import { SqliteTracking, TrackingStore } from '../../src/index.js';
import { databasePath } from '../support/helpers.js';

// A tracker with a bug: its experiment query ignores the project. The suite must catch it.
class IgnoresProject extends SqliteTracking {
  override experiments(query: ExperimentQuery = {}) {
    const { project: _ignored, ...rest } = query;
    return super.experiments(rest);
  }
}

describeTracker({
  name: 'ignores-project',
  newDatabase: () => databasePath(),
  connect: async (path) => new IgnoresProject(TrackingStore.open(path)),
});
