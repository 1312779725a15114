import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  convertCheckpoint,
  flattenTensors,
  fromNumbers,
  type StateTree,
  StorageRegistry,
  type Tensor,
  tensor,
} from '@ckpt/core';
import { sha256File } from '@ckpt/native';
import { safetensors } from '@ckpt/storage-safetensors';
import { describe, expect, it } from 'vitest';
import { pytorch } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ckpt-pt-ckpts-'));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const registry = new StorageRegistry([pytorch, safetensors]);

describe('Lightning checkpoints', () => {
  it('expose epoch, global_step, state_dict, optimizer states, schedulers, hyper-parameters and callbacks', async () => {
    const { state, metadata } = await pytorch.load(fixture('lightning.ckpt'));
    expect(state.epoch).toBe(1);
    expect(state.global_step).toBe(8);
    expect(metadata['pytorch-lightning_version']).toBe('2.6.6');
    expect(Object.keys(state.state_dict as object)).toContain('net.fc1.weight');
    expect(Array.isArray(state.optimizer_states)).toBe(true);
    expect(Array.isArray(state.lr_schedulers)).toBe(true);
    const callbacks = state.callbacks as Record<string, StateTree>;
    const checkpoint = Object.entries(callbacks).find(([k]) => k.startsWith('ModelCheckpoint'))?.[1] as StateTree;
    expect(checkpoint.best_model_path).toMatch(/best-epoch=01-val_loss=0\.918\.ckpt$/);
    expect((checkpoint.best_model_score as Tensor).dtype).toBe('F32');
    expect(state.hyper_parameters).toBeDefined();
  });
});

describe('Hugging Face pytorch_model.bin checkpoints', () => {
  it('read plain and sharded with pytorch_model.bin.index.json', async () => {
    const folder = join(dir, 'hf');
    mkdirSync(folder);
    const a = { 'embed.weight': fromNumbers('F32', [1, 2, 3, 4], [2, 2]) };
    const b = { 'lm_head.weight': fromNumbers('BF16', [1, 2]), 'norm.weight': fromNumbers('F16', [3]) };
    await pytorch.save(join(folder, 'pytorch_model-00001-of-00002.bin'), a);
    await pytorch.save(join(folder, 'pytorch_model-00002-of-00002.bin'), b);
    const index = join(folder, 'pytorch_model.bin.index.json');
    writeFileSync(
      index,
      JSON.stringify({
        metadata: { total_size: 24 },
        weight_map: {
          'embed.weight': 'pytorch_model-00001-of-00002.bin',
          'lm_head.weight': 'pytorch_model-00002-of-00002.bin',
          'norm.weight': 'pytorch_model-00002-of-00002.bin',
        },
      }),
    );
    expect(pytorch.detect(new Uint8Array(readFileSync(index)))).toBe(true);
    const { state } = await pytorch.load(index);
    expect(state).toStrictEqual({ ...a, ...b });
    const inspection = await pytorch.inspect(index);
    expect(inspection.files).toHaveLength(2);
    expect(inspection.tensors.map((t) => t.name).sort()).toEqual(['embed.weight', 'lm_head.weight', 'norm.weight']);
  });
});

describe('convert', () => {
  it('turns a .pt into .safetensors and back, with the digest of the output', async () => {
    const out = join(dir, 'mlp.safetensors');
    const result = await convertCheckpoint(fixture('mlp_state_dict.pt'), out, { registry });
    expect(result).toMatchObject({ format: 'safetensors', source: { format: 'pytorch' }, tensorCount: 5 });
    expect(result.sha256).toBe(await sha256File(out));
    const original = (await pytorch.load(fixture('mlp_state_dict.pt'))).state;
    const converted = (await safetensors.load(out)).state;
    const summary = (state: StateTree) =>
      flattenTensors(state)
        .map(([n, t]) => [n, t.dtype, t.shape])
        .sort();
    expect(summary(converted)).toEqual(summary(original));
    const back = join(dir, 'mlp-again.pt');
    await convertCheckpoint(out, back, { registry });
    const bytes = (state: StateTree) =>
      flattenTensors(state)
        .map(([n, t]) => [n, Buffer.from(t.data).toString('hex')])
        .sort();
    expect(bytes((await pytorch.load(back)).state)).toEqual(bytes(original));
  });

  it('makes non-contiguous views contiguous and stores tied weights once, as transformers does', async () => {
    const out = join(dir, 'views.safetensors');
    await convertCheckpoint(fixture('views_shared_storage.pt'), out, { registry });
    const header = JSON.parse(
      readFileSync(out)
        .subarray(8, 8 + Number(readFileSync(out).readBigUInt64LE(0)))
        .toString(),
    );
    expect(Object.keys(header)).not.toContain('tied_same');
    const { state } = await safetensors.load(out);
    const source = (await pytorch.load(fixture('views_shared_storage.pt'))).state;
    expect(state.tied_same).toBe(state.base);
    expect(Buffer.from((state.transposed as Tensor).data).equals(Buffer.from((source.transposed as Tensor).data))).toBe(
      true,
    );
  });

  it('shards on request', async () => {
    const out = join(dir, 'sharded', 'model.safetensors');
    mkdirSync(join(dir, 'sharded'));
    const state: StateTree = Object.fromEntries(
      Array.from({ length: 4 }, (_, i) => [`w${i}`, tensor('F32', [256], new Uint8Array(1024).fill(i))]),
    );
    await pytorch.save(join(dir, 'four.pt'), state);
    const result = await convertCheckpoint(join(dir, 'four.pt'), out, { registry, save: { maxShardSize: 2048 } });
    expect(result.path).toBe(join(dir, 'sharded', 'model.safetensors.index.json'));
    expect(result.files).toHaveLength(3);
    expect((await safetensors.load(result.path)).state).toStrictEqual(state);
  });

  it('says so when the destination format cannot hold a dtype', async () => {
    await expect(
      convertCheckpoint(fixture('all_dtypes.pt'), join(dir, 'all.safetensors'), { registry }),
    ).rejects.toMatchObject({
      code: 'CKPT_UNSUPPORTED',
      message: expect.stringMatching(/C128/),
    });
  });
});
