// The manager in a process that may not write the folder (run with the
// capabilities that let root ignore file permissions dropped):
//   node denied-child.mjs <directory> <experiment>
// Prints one JSON line: what opening, listing, loading and saving gave.
import { CheckpointManager, fromTypedArray } from '@ckpt/core';
import { safetensors } from '../../dist/index.js';

const [directory, experiment] = process.argv.slice(2);
const outcome = async (work) => {
  try {
    return { ok: await work() };
  } catch (error) {
    return { code: error.code ?? error.name, message: String(error.message) };
  }
};
const report = {};
report.open = await outcome(async () => {
  await CheckpointManager.open({ directory, experiment, storage: safetensors, warn: () => {} });
  return 'opened';
});
const reader = await CheckpointManager.open({ directory, experiment, storage: safetensors, readOnly: true });
report.list = await outcome(async () => (await reader.list()).map((r) => r.id));
report.load = await outcome(async () => Object.keys((await reader.load('latest')).state));
report.verify = await outcome(async () => (await reader.verify('all')).map((r) => r.status));
report.save = await outcome(() => reader.save({ state: { w: fromTypedArray(Float32Array.of(1)) }, step: 99 }));
await reader.close();
process.stdout.write(`${JSON.stringify(report)}\n`);
