import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromNumbers, fromTypedArray, type StateTree, type Tensor, Tuple, tensor } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import { readHeader, SafetensorsFile, safetensors } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ckpt-st-'));
const path = (name: string) => join(dir, name);

function headerJson(file: string): Record<string, unknown> {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
}

describe('a plain state dict', () => {
  it('stays plain: names as given, no structure in the metadata, format pt for transformers', async () => {
    const state = {
      'model.embed.weight': fromNumbers('F32', [1, 2, 3, 4], [2, 2]),
      'model.norm.bias': fromNumbers('F16', [1, 2]),
    };
    await safetensors.save(path('plain.safetensors'), state);
    const header = headerJson(path('plain.safetensors'));
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(Object.keys(header).sort()).toEqual(['__metadata__', 'model.embed.weight', 'model.norm.bias']);
    const loaded = await safetensors.load(path('plain.safetensors'));
    expect(loaded.state).toStrictEqual(state);
  });

  it('pads the header to 8 bytes and orders tensors as the reference writer does', async () => {
    const state = {
      b: fromNumbers('F32', [1]),
      a: fromNumbers('F32', [1]),
      flag: tensor('BOOL', [1], new Uint8Array([1])),
      big: fromNumbers('I64', [1]),
    };
    await safetensors.save(path('order.safetensors'), state, { format: false });
    const bytes = readFileSync(path('order.safetensors'));
    expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0);
    const { entries } = await readHeader(path('order.safetensors'));
    expect(entries.map((e) => e.name)).toEqual(['big', 'a', 'b', 'flag']);
  });
});

describe('nested training state', () => {
  it('is stored as flattened names with its structure in __metadata__', async () => {
    const state: StateTree = {
      model: { fc: { weight: fromNumbers('F32', [1, 2]) } },
      optimizer: { param_groups: [{ lr: 0.1, betas: Tuple.of(0.9, 0.99) }] },
      epoch: 4,
    };
    await safetensors.save(path('nested.safetensors'), state);
    const header = headerJson(path('nested.safetensors'));
    expect(Object.keys(header)).toContain('model.fc.weight');
    expect(typeof (header.__metadata__ as Record<string, string>)['ckpt.structure']).toBe('string');
    const loaded = await safetensors.load(path('nested.safetensors'));
    expect(loaded.state).toStrictEqual(state);
    expect(loaded.metadata).toEqual({ format: 'pt' });
  });

  it('refuses metadata keys ckpt reserves', async () => {
    await expect(
      safetensors.save(
        path('reserved.safetensors'),
        { w: fromNumbers('F32', [1]) },
        { metadata: { 'ckpt.structure': 'x' } },
      ),
    ).rejects.toMatchObject({ code: 'CKPT_INVALID_ARGUMENT' });
  });
});

describe('encode', () => {
  it('gives the bytes save writes, tensors as views of the state (for uploads from memory)', async () => {
    const state = {
      model: { w: fromNumbers('F32', [1, 2, 3, 4], [2, 2]), b: fromNumbers('BF16', [1, 2]) },
      epoch: 3,
    };
    await safetensors.save(path('encoded.safetensors'), state, { metadata: { run: 'a' } });
    const encoded = safetensors.encode(state, { metadata: { run: 'a' } });
    const bytes = Buffer.concat(encoded.chunks);
    expect(encoded.size).toBe(bytes.byteLength);
    expect(bytes.equals(readFileSync(path('encoded.safetensors')))).toBe(true);
    expect(encoded.chunks.some((c) => c === state.model.w.data)).toBe(true);
  });
});

describe('tied weights', () => {
  const shared = fromNumbers('F32', [1, 2, 3, 4], [2, 2]);
  const state = { 'embed.weight': shared, 'lm_head.weight': shared, 'norm.weight': fromNumbers('F32', [1]) };

  it('are refused by default, naming the tensors and the option', async () => {
    await expect(safetensors.save(path('tied.safetensors'), state)).rejects.toMatchObject({
      code: 'CKPT_CONFLICT',
      message: expect.stringMatching(/embed\.weight = lm_head\.weight.*tiedWeights: 'dedupe'/),
    });
  });

  it('are stored once with dedupe and come back as one shared tensor', async () => {
    await safetensors.save(path('tied.safetensors'), state, { tiedWeights: 'dedupe' });
    const header = headerJson(path('tied.safetensors'));
    expect(Object.keys(header)).not.toContain('lm_head.weight');
    const loaded = (await safetensors.load(path('tied.safetensors'))).state as Record<string, Tensor>;
    expect(loaded['lm_head.weight']).toBe(loaded['embed.weight']);
    expect(loaded['lm_head.weight']?.data).toStrictEqual(shared.data);
  });

  it('are found through views of one buffer too; partial overlaps are refused, or written whole with dedupe', async () => {
    const buffer = new Float32Array(8);
    const a = fromTypedArray(buffer.subarray(0, 4));
    const sameRange = fromTypedArray(buffer.subarray(0, 4));
    const overlapping = fromTypedArray(buffer.subarray(2, 6));
    const disjoint = fromTypedArray(buffer.subarray(4, 8));
    await expect(safetensors.save(path('views.safetensors'), { a, sameRange })).rejects.toMatchObject({
      code: 'CKPT_CONFLICT',
    });
    await expect(safetensors.save(path('views.safetensors'), { a, overlapping })).rejects.toThrow(/overlap in memory/);
    await safetensors.save(path('views.safetensors'), { a, overlapping }, { tiedWeights: 'dedupe' });
    const loaded = (await safetensors.load(path('views.safetensors'))).state;
    expect(loaded).toStrictEqual({ a, overlapping });
    expect(loaded.a).not.toBe(loaded.overlapping);
    await safetensors.save(path('views.safetensors'), { a, disjoint });
  });
});

describe('loading', () => {
  it('maps the file once and hands out zero-copy views', async () => {
    const state = { a: fromNumbers('F32', [1, 2, 3]), b: fromNumbers('F64', [4]) };
    await safetensors.save(path('mapped.safetensors'), state);
    const loaded = await safetensors.load(path('mapped.safetensors'));
    expect(loaded.zeroCopy).toBe(true);
    expect(readFileSync('/proc/self/maps', 'utf8').split(path('mapped.safetensors')).length - 1).toBe(1);
  });

  it('reads one tensor at a time through SafetensorsFile, and names the missing one', async () => {
    await safetensors.save(path('one.safetensors'), { a: fromNumbers('I32', [7]), b: fromNumbers('I32', [8]) });
    using file = await SafetensorsFile.open(path('one.safetensors'));
    expect(file.names.sort()).toEqual(['a', 'b']);
    expect(Array.from(file.tensor('b').data)).toEqual([8, 0, 0, 0]);
    expect(() => file.tensor('c')).toThrow(expect.objectContaining({ code: 'CKPT_NOT_FOUND' }));
  });

  it('refuses C128, which safetensors cannot store', async () => {
    await expect(
      safetensors.save(path('c128.safetensors'), { z: tensor('C128', [1], new Uint8Array(16)) }),
    ).rejects.toMatchObject({ code: 'CKPT_UNSUPPORTED' });
  });
});
