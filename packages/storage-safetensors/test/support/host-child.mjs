// A training process on its own "host" (run in its own UTS and PID namespaces,
// so two of them can share a host name or a PID), saving into a shared folder:
//   node host-child.mjs <directory> <experiment> <first step> <count> [floats per checkpoint]
// Prints one JSON line: its pid and host name, and the steps it saved or the errors.
import { hostname } from 'node:os';
import { CheckpointManager, fromTypedArray } from '@ckpt/core';
import { safetensors } from '../../dist/index.js';

const [directory, experiment, first, count, floats = String(256 * 1024)] = process.argv.slice(2);
const report = { pid: process.pid, host: hostname(), saved: [], errors: [] };
for (let i = 0; i < Number(count); i++) {
  const step = Number(first) + i;
  // A manager per save: each opening runs recovery while the other process may be mid-save.
  const manager = await CheckpointManager.open({ directory, experiment, storage: safetensors, warn: () => {} });
  try {
    const state = { w: fromTypedArray(new Float32Array(Number(floats)).fill(step)) };
    const { record } = await manager.save({ state, step });
    report.saved.push(record.step);
  } catch (error) {
    report.errors.push(`${error.code ?? error.name}: ${error.message}`);
  } finally {
    await manager.close();
  }
}
process.stdout.write(`${JSON.stringify(report)}\n`);
