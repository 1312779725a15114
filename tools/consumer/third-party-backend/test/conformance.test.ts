import { describeStorageBackend } from '@ckpt/testkit';
import { bundleBackend } from '../src/index.js';

describeStorageBackend(() => bundleBackend, { name: 'ckpt-bundle' });
