// One rank of a multi-process save, as a training job's process would run it:
//   node rank-child.mjs <directory> <experiment> <rank> <worldSize> <step> <gatherTimeoutMs>
// Prints "open", then "saved <id>" or "failed <code> <message>".
import { CheckpointManager, fromTypedArray } from '@ckpt/core';
import { safetensors } from '../../dist/index.js';

const [directory, experiment, rank, worldSize, step, gatherTimeoutMs] = process.argv.slice(2);
const manager = await CheckpointManager.open({
  directory,
  experiment,
  storage: safetensors,
  gatherTimeoutMs: Number(gatherTimeoutMs),
  warn: () => {},
});
process.stdout.write('open\n');
const value = Number(step) * 100 + Number(rank);
const state = {};
for (let i = 0; i < 2; i++) state[`rank${rank}.w${i}`] = fromTypedArray(new Float32Array(4096).fill(value));
try {
  const { record } = await manager.save({
    state,
    step: Number(step),
    rank: Number(rank),
    worldSize: Number(worldSize),
  });
  process.stdout.write(`saved ${record.id}\n`);
} catch (error) {
  process.stdout.write(`failed ${error.code} ${error.message}\n`);
}
await manager.close();
