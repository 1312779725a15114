/**
 * A training loop for the crash and concurrency tests, run as a child process.
 *   node crash-child.mjs <directory> <experiment> loop        saves forever, resuming first
 *   node crash-child.mjs <directory> <experiment> count <n>   saves n checkpoints tagged with its pid
 * Prints `saved <epoch>` after each save.
 */
import { CheckpointManager, keepLatest } from '../../dist/index.js';
import { testBackend } from './test-backend.mjs';

const [directory, experiment, mode, count] = process.argv.slice(2);

function filled(epoch, n) {
  const values = new Float32Array(n).fill(epoch);
  return { dtype: 'F32', shape: [n], data: new Uint8Array(values.buffer) };
}

const manager = await CheckpointManager.open({
  directory,
  experiment,
  storage: testBackend(),
  integrity: { fsync: false },
  retention: mode === 'loop' ? keepLatest(3) : [],
  cache: { ttlMs: 0 },
  warn: () => {},
});

if (mode === 'loop') {
  const resumed = await manager.resume();
  let epoch = resumed ? resumed.record.epoch + 1 : 0;
  if (resumed) {
    const values = new Float32Array(resumed.state.w.data.slice().buffer);
    if (values.some((v) => v !== resumed.record.epoch)) throw new Error(`resumed a wrong state at epoch ${epoch - 1}`);
  }
  for (;;) {
    const n = 16_384 + ((epoch * 7919) % 500_000);
    await manager.save({ state: { w: filled(epoch, n), epoch }, epoch, metrics: { val_loss: 1 / (1 + epoch) } });
    process.stdout.write(`saved ${epoch}\n`);
    epoch++;
  }
} else {
  for (let i = 0; i < Number(count); i++) {
    await manager.save({ state: { w: filled(i, 1000) }, epoch: i, tags: [`pid-${process.pid}`] });
    process.stdout.write(`saved ${i}\n`);
  }
  await manager.close();
}
