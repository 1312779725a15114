import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isTensor, type Tensor, toNumbers } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import { safetensors } from '../src/index.js';

// Files written by the real Python safetensors (torch 2.13, safetensors 0.8.0),
// each with a manifest of its exact contents.
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'ckpt-st-fixtures-'));

interface ManifestTensor {
  __tensor__: true;
  dtype: string;
  shape: number[];
  nbytes: number;
  sha256: string;
  first: Array<number | { __float__: string }>;
}

function manifest(name: string) {
  const json = JSON.parse(readFileSync(fixture(`${name}.manifest.json`), 'utf8'));
  const entries = json.content.__ordereddict__ as Array<[string, ManifestTensor]>;
  return { entries, metadata: json.metadata as Record<string, string> | undefined };
}

function expected(value: number | { __float__: string }): number {
  return typeof value === 'number' ? value : Number(value.__float__.replace('inf', 'Infinity'));
}

describe.each(['mlp.safetensors', 'all_dtypes.safetensors'])('%s', (name) => {
  const { entries, metadata: wantMetadata } = manifest(name);

  it('keeps __metadata__ as Python saved it', async () => {
    expect((await safetensors.load(fixture(name))).metadata).toEqual(wantMetadata ?? {});
  });

  it('loads every tensor with the dtype, shape and bytes of the manifest', async () => {
    const { state } = await safetensors.load(fixture(name));
    expect(Object.keys(state).sort()).toEqual(entries.map(([k]) => k).sort());
    for (const [key, want] of entries) {
      const got = state[key] as Tensor;
      expect(isTensor(got), key).toBe(true);
      expect(got.dtype, key).toBe(want.dtype);
      expect(got.shape, key).toEqual(want.shape);
      expect(got.data.byteLength, key).toBe(want.nbytes);
      expect(createHash('sha256').update(got.data).digest('hex'), key).toBe(want.sha256);
      if (
        ['F32', 'F64', 'F16', 'BF16', 'I32', 'I16', 'I8', 'U8', 'U16', 'U32', 'F8_E4M3', 'F8_E5M2'].includes(want.dtype)
      ) {
        const values = toNumbers(got).slice(0, want.first.length);
        expect(values, key).toEqual(want.first.map(expected));
      }
    }
  });

  it('inspects to the same names, dtypes and shapes', async () => {
    const inspection = await safetensors.inspect(fixture(name));
    const byName = new Map(inspection.tensors.map((t) => [t.name, t]));
    for (const [key, want] of entries) {
      expect(byName.get(key), key).toMatchObject({ dtype: want.dtype, shape: want.shape, byteLength: want.nbytes });
    }
  });

  it('is written back byte for byte identical', async () => {
    const { state, metadata } = await safetensors.load(fixture(name));
    const out = join(scratch, name);
    await safetensors.save(out, state, { metadata, format: metadata.format ?? false, fsync: false });
    // Metadata key order is a Rust HashMap's and so arbitrary: compare files with at most one key exactly.
    if (Object.keys(metadata).length <= 1) expect(readFileSync(out).equals(readFileSync(fixture(name)))).toBe(true);
    const again = await safetensors.load(out);
    expect(again.state).toStrictEqual(state);
    expect(again.metadata).toEqual(metadata);
  });
});
