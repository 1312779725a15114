// A tensor over 4 GiB, in a sparse file (nothing like 5 GiB is written to make it).
// Node 20 caps one view at 4 GiB: there the tensor is refused whole, typed, and read in chunks.
// From Node 22 it loads as one view, hashes, is saved again and round-trips.
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tensor } from '@ckpt/core';
import { backend, MAX_VIEW_BYTES, sha256File } from '@ckpt/native';
import { writeSparseSafetensors } from '@ckpt/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, safetensors } from '../src/index.js';

const GiB = 2 ** 30;
const SIZE = 5 * GiB;
const dir = mkdtempSync(join(tmpdir(), 'ckpt-st-big-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Marks at the start, just past 4 GiB and at the end of the tensor's bytes. */
const MARKS: Array<[number, string]> = [
  [0, 'head'],
  [2 ** 32 + 1, 'past4'],
  [SIZE - 4, 'tail'],
];

function sparseFile(name: string): string {
  return writeSparseSafetensors(join(dir, name), 'big', SIZE, MARKS).path;
}

function expectMarks(bytes: (at: number, length: number) => Uint8Array): void {
  for (const [at, text] of MARKS) expect(Buffer.from(bytes(at, text.length)).toString()).toBe(text);
}

async function streamedSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 8 << 20 })) hash.update(chunk);
  return hash.digest('hex');
}

const oneViewFits = MAX_VIEW_BYTES >= SIZE;

describe.runIf(!oneViewFits)('a 5 GiB tensor where one view cannot hold it (Node 20)', () => {
  it('is refused whole with CKPT_VIEW_TOO_LARGE, and read in chunks on element boundaries', async () => {
    const path = sparseFile('node20.safetensors');
    await expect(safetensors.load(path)).rejects.toMatchObject({ code: 'CKPT_VIEW_TOO_LARGE' });
    using file = await SafetensorsFile.open(path);
    expect(() => file.tensor('big')).toThrow(expect.objectContaining({ code: 'CKPT_VIEW_TOO_LARGE' }));
    const chunks = [...file.tensorChunks('big', 2 * GiB)];
    expect(chunks.map((c) => c.byteLength)).toEqual([2 * GiB, 2 * GiB, GiB]);
    const at = (offset: number, length: number) => {
      const index = Math.floor(offset / (2 * GiB));
      return (chunks[index] as Uint8Array).subarray(offset - index * 2 * GiB, offset - index * 2 * GiB + length);
    };
    expectMarks(at);
    expect([...file.tensorChunks('big')].map((c) => c.byteLength)).toEqual([MAX_VIEW_BYTES, SIZE - MAX_VIEW_BYTES]);
    expect(() => file.tensorChunks('big', 0).next()).toThrow(/chunkBytes/);
  });
});

describe.runIf(oneViewFits && backend.kind === 'native')('a 5 GiB tensor as one view (Node 22 and later)', () => {
  it('loads as one zero-copy view, hashes, is saved again, and round-trips', { timeout: 600_000 }, async () => {
    const path = sparseFile('node22.safetensors');
    const loaded = await safetensors.load(path);
    expect(loaded.zeroCopy).toBe(true);
    const big = loaded.state.big as Tensor;
    expect(big.data.byteLength).toBe(SIZE);
    expect(big.shape).toEqual([SIZE]);
    expectMarks((at, length) => big.data.subarray(at, at + length));

    // The native hash of the whole file agrees with node:crypto streaming it.
    expect(await sha256File(path)).toBe(await streamedSha256(path));

    const copy = join(dir, 'copy.safetensors');
    const saved = await safetensors.save(copy, { big }, { metadata: {} });
    expect(saved.sha256).toBe(await sha256File(copy));
    const again = await safetensors.load(copy);
    const back = again.state.big as Tensor;
    expect(back.data.byteLength).toBe(SIZE);
    expect(Buffer.compare(back.data, big.data)).toBe(0);
    rmSync(copy);
  });
});
