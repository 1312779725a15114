import { simpleBackend } from '../examples/simple-backend.js';
import { describeStorageBackend } from '../src/index.js';

// The worked example of docs/writing-a-storage-backend.md passes the suite.
describeStorageBackend(() => simpleBackend, { name: 'ckpt-simple (the documented example)' });
