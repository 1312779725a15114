import { describeTracker } from '@ckpt/testkit';
import { SqliteTracking, TrackingStore } from '../../src/index.js';
import { databasePath } from '../support/helpers.js';

// A tracker with a bug: deleting a checkpoint does nothing. The suite must catch it.
class ForgetsDeletions extends SqliteTracking {
  override async removeCheckpoint(): Promise<void> {}
}

describeTracker({
  name: 'forgets-deletions',
  newDatabase: () => databasePath(),
  connect: async (path) => new ForgetsDeletions(TrackingStore.open(path)),
});
