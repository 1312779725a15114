import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { flattenTensors } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import { pythonInfo, pytorch } from '../src/index.js';
import { expectMatchesManifest, manifestOf } from './manifest.js';

// Files written by the real torch 2.13 and Lightning 2.6, each with a manifest of its exact contents.
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const files = [
  'all_dtypes.pt',
  'mlp_state_dict.pt',
  'parameter.pt',
  'training_checkpoint.pt',
  'views_shared_storage.pt',
  'legacy_format.pt',
  'legacy_list_pairs.pt',
  'lightning.ckpt',
];

describe.each(files)('%s', (name) => {
  const path = fixture(name);
  const manifest = manifestOf(path);

  it('is the file the manifest describes', () => {
    if (manifest.sha256_of_file) {
      expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(manifest.sha256_of_file);
    }
  });

  it('reads back exactly as the manifest says: values, dtypes, shapes, strides honoured, structure, key types', async () => {
    const { state } = await pytorch.load(path);
    expectMatchesManifest(state, manifest.content);
  });

  it('inspects every tensor without reading tensor bytes', async () => {
    const inspection = await pytorch.inspect(path);
    const loaded = await pytorch.load(path);
    const tensors = flattenTensors(loaded.state);
    expect(inspection.format).toBe('pytorch');
    expect(inspection.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(
      tensors.map(([n, t]) => [n, t.dtype, [...t.shape]]),
    );
    expect(inspection.tensorBytes).toBe(tensors.reduce((sum, [, t]) => sum + t.data.byteLength, 0));
  });
});

describe('state_dict details', () => {
  it('keeps the OrderedDict _metadata that BUILD sets', async () => {
    const { state } = await pytorch.load(fixture('mlp_state_dict.pt'));
    const info = pythonInfo(state);
    expect(info?.className).toBe('collections.OrderedDict');
    expect(info?.attributes).toBeDefined();
  });

  it('keeps tied weights as one tensor object', async () => {
    const { state } = await pytorch.load(fixture('views_shared_storage.pt'));
    expect(state.tied_same).toBe(state.base);
  });

  it('hands out zero-copy views for contiguous tensors', async () => {
    const loaded = await pytorch.load(fixture('mlp_state_dict.pt'));
    expect(loaded.zeroCopy).toBe(true);
  });
});
