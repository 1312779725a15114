// After the README's example ran in the consumer project: its checkpoints are there, intact, and tracked.
import { existsSync } from 'node:fs';
import { CheckpointManager } from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';

const manager = await CheckpointManager.open({ directory: 'runs', experiment: 'resnet50', storage: safetensors });
const records = await manager.list();
const failed = (await manager.verify()).filter((r) => r.status !== 'ok');
await manager.close();
const latest = records.reduce((a, b) => (b.epoch > a.epoch ? b : a), records[0]);
if (records.length < 2 || latest?.epoch !== 90 || failed.length > 0 || !existsSync('runs/ckpt.db')) {
  console.error(
    `the example left ${records.length} checkpoints, latest epoch ${latest?.epoch}, ${failed.length} failing verify`,
  );
  process.exit(1);
}
console.log(
  `the README's example kept ${records.length} checkpoints (latest epoch 90), all verified, tracked in runs/ckpt.db`,
);
