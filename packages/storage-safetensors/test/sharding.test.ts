import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromNumbers, type StateTree, zeros } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import { parseSize, safetensors } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'ckpt-st-shards-'));
let counter = 0;
function folder(): string {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  return dir;
}

// Ten 4 KiB tensors.
const state: StateTree = Object.fromEntries(
  Array.from({ length: 10 }, (_, i) => [`layer.${i}.weight`, zeros('F32', [1024])]),
);

describe('sharded checkpoints in the Hugging Face layout', () => {
  it('are written as numbered shards plus an index, and read back whole', async () => {
    const dir = folder();
    const result = await safetensors.save(join(dir, 'model.safetensors'), state, { maxShardSize: 10_000 });
    expect(result.path).toBe(join(dir, 'model.safetensors.index.json'));
    expect(readdirSync(dir).sort()).toEqual([
      'model-00001-of-00005.safetensors',
      'model-00002-of-00005.safetensors',
      'model-00003-of-00005.safetensors',
      'model-00004-of-00005.safetensors',
      'model-00005-of-00005.safetensors',
      'model.safetensors.index.json',
    ]);
    expect(result.files).toHaveLength(6);
    const index = JSON.parse(readFileSync(result.path, 'utf8'));
    expect(index.metadata.total_size).toBe(40_960);
    expect(index.weight_map['layer.0.weight']).toBe('model-00001-of-00005.safetensors');
    expect(index.weight_map['layer.9.weight']).toBe('model-00005-of-00005.safetensors');
    const loaded = await safetensors.load(result.path);
    expect(loaded.state).toStrictEqual(state);
    const inspection = await safetensors.inspect(result.path);
    expect(inspection.files).toHaveLength(5);
    expect(inspection.tensorBytes).toBe(40_960);
  });

  it('write a single plain file when everything fits in one shard', async () => {
    const dir = folder();
    const result = await safetensors.save(join(dir, 'model.safetensors'), state, { maxShardSize: '1MB' });
    expect(result.path).toBe(join(dir, 'model.safetensors'));
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
  });

  it('keep nested structure and tied weights through the index', async () => {
    const dir = folder();
    const w = fromNumbers(
      'F32',
      Array.from({ length: 1024 }, (_, i) => i),
    );
    const nested: StateTree = { model: { a: w, b: zeros('F32', [1024]) }, head: w, step: 12 };
    const result = await safetensors.save(join(dir, 'ckpt.safetensors.index.json'), nested, {
      maxShardSize: 5000,
      tiedWeights: 'dedupe',
    });
    const loaded = (await safetensors.load(result.path)).state;
    expect(loaded).toStrictEqual(nested);
    expect(loaded.head).toBe((loaded.model as StateTree).a);
  });

  it('remove shards of an earlier save that the new index does not name', async () => {
    const dir = folder();
    await safetensors.save(join(dir, 'model.safetensors'), state, { maxShardSize: 5000 });
    expect(readdirSync(dir)).toHaveLength(11);
    await safetensors.save(join(dir, 'model.safetensors.index.json'), state, { maxShardSize: 25_000 });
    expect(readdirSync(dir).sort()).toEqual([
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
  });

  it('refuse an index naming a file outside its folder', async () => {
    const dir = folder();
    const index = join(dir, 'evil.safetensors.index.json');
    writeFileSync(index, JSON.stringify({ metadata: {}, weight_map: { w: '../../etc/passwd' } }));
    await expect(safetensors.load(index)).rejects.toMatchObject({
      code: 'CKPT_FORMAT',
      message: /not a file in the index's folder/,
    });
  });

  it('refuse an index that disagrees with its shards', async () => {
    const dir = folder();
    const result = await safetensors.save(join(dir, 'model.safetensors'), state, { maxShardSize: 10_000 });
    const index = JSON.parse(readFileSync(result.path, 'utf8'));
    index.weight_map['layer.0.weight'] = 'model-00002-of-00005.safetensors';
    writeFileSync(result.path, JSON.stringify(index));
    await expect(safetensors.load(result.path)).rejects.toMatchObject({ code: 'CKPT_FORMAT' });
    index.weight_map = { 'layer.0.weight': 'model-00001-of-00005.safetensors' };
    writeFileSync(result.path, JSON.stringify(index));
    await expect(safetensors.load(result.path)).rejects.toThrow(/which the index does not list/);
  });

  it('name a missing shard', async () => {
    const dir = folder();
    const index = join(dir, 'gone.safetensors.index.json');
    writeFileSync(index, JSON.stringify({ metadata: {}, weight_map: { w: 'gone-00001-of-00001.safetensors' } }));
    await expect(safetensors.load(index)).rejects.toMatchObject({ code: 'CKPT_NOT_FOUND' });
    expect(existsSync(join(dir, 'gone-00001-of-00001.safetensors'))).toBe(false);
  });

  it('read sizes as transformers does', () => {
    expect(parseSize('5GB')).toBe(5e9);
    expect(parseSize('2GiB')).toBe(2 ** 31);
    expect(parseSize('500MB')).toBe(5e8);
    expect(parseSize(1234)).toBe(1234);
    expect(() => parseSize('lots')).toThrow(expect.objectContaining({ code: 'CKPT_INVALID_ARGUMENT' }));
    expect(() => parseSize(0)).toThrow(/positive/);
  });
});

describe('detection', () => {
  it('recognises safetensors files and safetensors indexes, not pytorch indexes', () => {
    const header = Buffer.alloc(16);
    header.writeBigUInt64LE(2n);
    header.write('{}', 8);
    expect(safetensors.detect(header)).toBe(true);
    const index = Buffer.from(JSON.stringify({ metadata: {}, weight_map: { a: 'model-00001-of-00002.safetensors' } }));
    expect(safetensors.detect(index)).toBe(true);
    const pytorchIndex = Buffer.from(
      JSON.stringify({ metadata: {}, weight_map: { a: 'pytorch_model-00001-of-00002.bin' } }),
    );
    expect(safetensors.detect(pytorchIndex)).toBe(false);
  });
});
