// Opens and closes the experiment in a loop (each opening runs recovery) until killed:
//   node opener-child.mjs <directory> <experiment>
import { CheckpointManager } from '@ckpt/core';
import { safetensors } from '../../dist/index.js';

const [directory, experiment] = process.argv.slice(2);
for (;;) {
  const manager = await CheckpointManager.open({ directory, experiment, storage: safetensors, warn: () => {} });
  await manager.close();
}
