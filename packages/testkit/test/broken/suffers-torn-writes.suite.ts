import { writeFileSync } from 'node:fs';
import type { StorageBackend } from '@ckpt/core';
import { simpleBackend } from '../../examples/simple-backend.js';
import { describeStorageBackend } from '../../src/index.js';

// A backend with a bug: it truncates the target before validating the state,
// so a failed save destroys the previous file. The suite must catch it.
const careless: StorageBackend = {
  ...simpleBackend,
  save: async (path, state, options) => {
    writeFileSync(path, '');
    return simpleBackend.save(path, state, options);
  },
};

describeStorageBackend(() => careless, { name: 'careless' });
