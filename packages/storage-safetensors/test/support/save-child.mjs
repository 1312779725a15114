// One save into an existing experiment, as a training process would make it:
//   node save-child.mjs <directory> <experiment> <step> [keepLatest]
// Used under a system-call recorder to simulate power loss (power-loss.test.ts).
import { CheckpointManager, fromTypedArray, keepLatest } from '@ckpt/core';
import { safetensors } from '../../dist/index.js';

const [directory, experiment, step, keep] = process.argv.slice(2);
const retention = keep === undefined ? undefined : keepLatest(Number(keep));
const manager = await CheckpointManager.open({
  directory,
  experiment,
  storage: safetensors,
  warn: () => {},
  ...(retention ? { retention } : {}),
});
const value = Number(step);
await manager.save({ state: { w: fromTypedArray(new Float32Array(1024).fill(value)) }, step: value });
await manager.close();
