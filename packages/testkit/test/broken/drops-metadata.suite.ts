import type { StorageBackend } from '@ckpt/core';
import { simpleBackend } from '../../examples/simple-backend.js';
import { describeStorageBackend } from '../../src/index.js';

// A backend with a bug: it forgets user metadata on load. The suite must catch it.
const forgetful: StorageBackend = {
  ...simpleBackend,
  load: async (path, options) => ({ ...(await simpleBackend.load(path, options)), metadata: {} }),
};

describeStorageBackend(() => forgetful, { name: 'forgetful' });
