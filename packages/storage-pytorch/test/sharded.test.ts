import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointManager, fromTypedArray, type Tensor, tensorsEqual } from '@ckpt/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { requirePythonModules, runPython, skipPython } from '../../../tools/testing/python.js';
import { pytorch } from '../src/index.js';

// Sharded .bin checkpoints as transformers writes them (safe_serialization=False):
// pytorch_model-0000N-of-0000M.bin (torch.save zips) and pytorch_model.bin.index.json.
const root = mkdtempSync(join(tmpdir(), 'ckpt-pt-sharded-'));
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
let folders = 0;
const folder = () => mkdtempSync(join(root, `case-${++folders}-`));

/** Six tensors of 16 KiB (tensor i holds i, i + 1, ...): three shards of 32 KiB. */
function state(): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (let i = 0; i < 6; i++)
    out[`encoder.layer.${i}.weight`] = fromTypedArray(new Float32Array(4096).map((_, j) => i + j));
  return out;
}

describe('sharded .bin checkpoints', () => {
  it('writes shards and an index beside each other, and loads and inspects them back', async () => {
    const dir = folder();
    const index = join(dir, 'pytorch_model.bin.index.json');
    const saved = await pytorch.save(index, state(), { maxShardSize: 32 * 1024 + 1024, fsync: false });
    expect(readdirSync(dir).sort()).toEqual([
      'pytorch_model-00001-of-00003.bin',
      'pytorch_model-00002-of-00003.bin',
      'pytorch_model-00003-of-00003.bin',
      'pytorch_model.bin.index.json',
    ]);
    expect(saved.path).toBe(index);
    expect(saved.files.map((f) => f.path).at(-1)).toBe(index);
    for (const file of saved.files) expect(file.sha256).toBe(sha256(file.path));
    const json = JSON.parse(readFileSync(index, 'utf8'));
    expect(json.metadata).toEqual({ total_size: 6 * 16384 });
    expect(json.weight_map['encoder.layer.5.weight']).toBe('pytorch_model-00003-of-00003.bin');
    const loaded = await pytorch.load(index);
    for (const [name, t] of Object.entries(state())) expect(tensorsEqual(loaded.state[name] as Tensor, t)).toBe(true);
    const inspection = await pytorch.inspect(index);
    expect(inspection.tensors).toHaveLength(6);
    expect(inspection.files).toHaveLength(3);
  });

  it('a .bin path with a shard size the state exceeds gets its index beside it; a smaller state stays one file', async () => {
    const dir = folder();
    const big = await pytorch.save(join(dir, 'weights.bin'), state(), { maxShardSize: '40KB', fsync: false });
    expect(big.path).toBe(join(dir, 'weights.bin.index.json'));
    expect(big.files).toHaveLength(4);
    const small = await pytorch.save(join(dir, 'small.bin'), state(), { maxShardSize: '1MB', fsync: false });
    expect(small.files.map((f) => f.path)).toEqual([join(dir, 'small.bin')]);
  });

  it('refuses to shard what is not a flat state dict, and a size it cannot read', async () => {
    const dir = folder();
    const nested = { model: state(), epoch: 3 };
    await expect(pytorch.save(join(dir, 'pytorch_model.bin.index.json'), nested)).rejects.toMatchObject({
      code: 'CKPT_INVALID_ARGUMENT',
    });
    await expect(
      pytorch.save(join(dir, 'pytorch_model.bin.index.json'), state(), { maxShardSize: 'a lot' }),
    ).rejects.toMatchObject({ code: 'CKPT_INVALID_ARGUMENT' });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('the manager keeps a sharded .bin checkpoint as one record, verified and loaded whole', async () => {
    const manager = await CheckpointManager.open({
      directory: folder(),
      experiment: 'bin-shards',
      storage: pytorch,
      saveOptions: { maxShardSize: 40 * 1024 },
      warn: () => {},
    });
    const { record } = await manager.save({ state: state(), step: 7 });
    expect(record?.file).toBe(`${record?.id}/pytorch_model.bin.index.json`);
    expect(record?.files?.map((f) => f.file.split('/')[1])).toEqual([
      'pytorch_model-00001-of-00003.bin',
      'pytorch_model-00002-of-00003.bin',
      'pytorch_model-00003-of-00003.bin',
      'pytorch_model.bin.index.json',
    ]);
    expect((await manager.verify())[0]?.status).toBe('ok');
    const loaded = await manager.load(undefined, { verifyIntegrity: true });
    expect(
      tensorsEqual(loaded.state['encoder.layer.2.weight'] as Tensor, state()['encoder.layer.2.weight'] as Tensor),
    ).toBe(true);
    await manager.close();
  });
});

describe.skipIf(skipPython)('sharded .bin checkpoints and real torch', () => {
  beforeAll(() => requirePythonModules(['torch']));

  it('torch loads every shard the index names, each tensor where the index says', async () => {
    const dir = folder();
    const index = join(dir, 'pytorch_model.bin.index.json');
    await pytorch.save(index, state(), { maxShardSize: 32 * 1024 + 1024, fsync: false });
    const script = `
import json, os, sys, torch
index_path = sys.argv[1]
index = json.load(open(index_path))
shards = {f: torch.load(os.path.join(os.path.dirname(index_path), f), weights_only=True) for f in set(index['weight_map'].values())}
print(json.dumps({name: [shards[f][name][0].item(), shards[f][name][-1].item()] for name, f in index['weight_map'].items()}))
`;
    const seen = JSON.parse(runPython(script, [index]).stdout);
    for (let i = 0; i < 6; i++) expect(seen[`encoder.layer.${i}.weight`]).toEqual([i, i + 4095]);
  });

  it('reads the shards and index torch and a transformers-style writer produce', async () => {
    const dir = folder();
    const script = `
import json, os, sys, torch
folder = sys.argv[1]
state = {f'layer.{i}.weight': torch.arange(1024, dtype=torch.float32) + i for i in range(4)}
names = ['pytorch_model-00001-of-00002.bin', 'pytorch_model-00002-of-00002.bin']
weight_map = {}
for n, keys in zip(names, [['layer.0.weight', 'layer.1.weight'], ['layer.2.weight', 'layer.3.weight']]):
    torch.save({k: state[k] for k in keys}, os.path.join(folder, n))
    weight_map.update({k: n for k in keys})
json.dump({'metadata': {'total_size': 4 * 4096}, 'weight_map': weight_map}, open(os.path.join(folder, 'pytorch_model.bin.index.json'), 'w'), indent=2, sort_keys=True)
`;
    runPython(script, [dir]);
    const loaded = await pytorch.load(join(dir, 'pytorch_model.bin.index.json'));
    const layer3 = loaded.state['layer.3.weight'] as Tensor;
    expect(new Float32Array(layer3.data.buffer, layer3.data.byteOffset, 1024).slice(0, 2)).toEqual(
      Float32Array.of(3, 4),
    );
  });
});
