import { describeTracker } from '@ckpt/testkit';
import { connect } from '../src/index.js';
import { databasePath } from './support/helpers.js';

describeTracker({ name: 'sqlite', newDatabase: () => databasePath(), connect: (path) => connect(path) });
