// ---- appended by the consumer test: the README leaves training to the reader.
import { tensor } from '@ckpt/core';

/** One "epoch": small random weights, a falling validation loss. */
// biome-ignore lint/correctness/noUnusedVariables: the README's example, above, calls it
async function trainOneEpoch(epoch: number) {
  const weights = new Float32Array(64).map(() => Math.random());
  return {
    model: { 'fc.weight': tensor('F32', [8, 8], new Uint8Array(weights.buffer)) },
    optimizer: { lr: 1e-3, step: epoch * 100 },
    metrics: { val_loss: 1 / epoch },
  };
}
