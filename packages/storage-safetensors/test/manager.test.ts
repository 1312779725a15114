import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointManager, fromTypedArray, keepLatest, templateLayout } from '@ckpt/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { requirePythonModules, runPython, skipPython } from '../../../tools/testing/python.js';
import { safetensors } from '../src/index.js';

// The CheckpointManager over safetensors: each checkpoint Python's
// safetensors reads, with the manager's record in __metadata__.
const root = mkdtempSync(join(tmpdir(), 'ckpt-st-manager-'));

describe.skipIf(skipPython)('the manager writes what Python safetensors reads', () => {
  beforeAll(() => requirePythonModules(['safetensors', 'numpy']));

  it('Lightning-named files with retention; every kept file loads, with its metadata', async () => {
    const manager = await CheckpointManager.open({
      directory: root,
      experiment: 'lm',
      storage: safetensors,
      layout: templateLayout('{epoch:02d}-{val_loss:.3f}'),
      retention: keepLatest(2),
      warn: () => {},
    });
    for (const [epoch, val_loss] of [0.9, 0.4, 0.6, 0.5].entries()) {
      await manager.save({
        state: { 'lm_head.weight': fromTypedArray(Float32Array.of(epoch, -epoch)) },
        epoch,
        metrics: { val_loss },
      });
    }
    const records = await manager.list();
    expect(records.map((r) => r.file)).toEqual([
      'epoch=01-val_loss=0.400.safetensors',
      'epoch=02-val_loss=0.600.safetensors',
      'epoch=03-val_loss=0.500.safetensors',
    ]);
    const script = `
import json, sys
from safetensors import safe_open
out = {}
for path in json.loads(sys.stdin.read()):
    with safe_open(path, framework='numpy') as f:
        out[path] = {'w': f.get_tensor('lm_head.weight').tolist(), 'record': json.loads(f.metadata()['ckpt_record'])}
print(json.dumps(out))
`;
    const seen = JSON.parse(runPython(script, [], JSON.stringify(records.map((r) => r.path))).stdout);
    for (const record of records) {
      expect(seen[record.path].w).toEqual([record.epoch, -(record.epoch as number)]);
      expect(seen[record.path].record).toMatchObject({
        epoch: record.epoch,
        metrics: record.metrics,
        experiment: 'lm',
      });
    }
    await manager.close();
  });
});
