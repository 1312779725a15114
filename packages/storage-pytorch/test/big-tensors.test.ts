// A 5 GiB tensor (from a sparse safetensors file) converted to a .pt archive,
// which needs ZIP64, and read back as one view. Node 22 and later: Node 20
// cannot hold the tensor in one view (see storage-safetensors' big-tensors test).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertCheckpoint, StorageRegistry, type Tensor } from '@ckpt/core';
import { backend, MAX_VIEW_BYTES, sha256File } from '@ckpt/native';
import { safetensors } from '@ckpt/storage-safetensors';
import { writeSparseSafetensors } from '@ckpt/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { pytorch } from '../src/index.js';

const SIZE = 5 * 2 ** 30;
const dir = mkdtempSync(join(tmpdir(), 'ckpt-pt-big-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.runIf(MAX_VIEW_BYTES >= SIZE && backend.kind === 'native')('a 5 GiB tensor (Node 22 and later)', () => {
  it('converts from safetensors to .pt (ZIP64) and reads back as one view, byte for byte', {
    timeout: 600_000,
  }, async () => {
    const marks = [
      [0, 'head'],
      [2 ** 32 - 2, 'across4'],
      [SIZE - 4, 'tail'],
    ] as const;
    const source = writeSparseSafetensors(join(dir, 'big.safetensors'), 'embed.weight', SIZE, marks).path;
    const registry = new StorageRegistry();
    registry.register(safetensors);
    registry.register(pytorch);
    const target = join(dir, 'big.pt');
    const converted = await convertCheckpoint(source, target, { registry });
    expect(converted.sha256).toBe(await sha256File(target));
    const loaded = await pytorch.load(target);
    const big = loaded.state['embed.weight'] as Tensor;
    expect(loaded.zeroCopy).toBe(true);
    expect(big.data.byteLength).toBe(SIZE);
    for (const [at, text] of marks) expect(Buffer.from(big.data.subarray(at, at + text.length)).toString()).toBe(text);
    const original = (await safetensors.load(source)).state['embed.weight'] as Tensor;
    expect(Buffer.compare(big.data, original.data)).toBe(0);
  });
});
