import { describeStorageBackend } from '@ckpt/testkit';
import { safetensors } from '../src/index.js';

describeStorageBackend(() => safetensors, { name: 'safetensors' });
