// A training process writing into the experiment while the UI is open: one save, then exit.
import { CheckpointManager, tensor } from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';

const [directory, experiment, epoch] = process.argv.slice(2);
const manager = await CheckpointManager.open({ directory, experiment, storage: safetensors, warn: () => {} });
const bytes = new Uint8Array(new Float32Array(16).fill(Number(epoch)).buffer);
await manager.save({
  state: { 'layer.weight': tensor('F32', [16], bytes) },
  epoch: Number(epoch),
  step: Number(epoch) * 10,
  metrics: { val_loss: 0.01 },
});
await manager.close();
