import { describeStorageBackend } from '@ckpt/testkit';
import { pytorch } from '../src/index.js';

describeStorageBackend(() => pytorch, { name: 'pytorch', extension: '.pt' });
