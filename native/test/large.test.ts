import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MappedFile } from '../src/index.js';
import { implementations, scratchDir } from './helpers.js';

const GiB = 2 ** 30;
const dir = scratchDir();

// A sparse file just over 4 GiB with markers beyond the 4 GiB line: no single
// Buffer on Node 20 can hold it, so it is read as views per range.
const path = join(dir, 'sparse-5g.bin');
const size = 4 * GiB + 123_457;
const markers: [number, string][] = [
  [0, 'start'],
  [GiB - 3, 'straddles 1 GiB'],
  [4 * GiB - 2, 'straddles 4 GiB'],
  [4 * GiB + 100_000, 'far'],
  [size - 4, 'end!'],
];
{
  const fd = openSync(path, 'w');
  for (const [at, text] of markers) writeSync(fd, text, at);
  closeSync(fd);
}

describe('files over 4 GiB', () => {
  it('native and JavaScript hashes agree', async () => {
    const digests = await Promise.all(implementations.map((impl) => impl.sha256File(path)));
    expect(new Set(digests).size).toBe(1);
    expect(digests[0]).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each(implementations)('views past 4 GiB read the right bytes ($kind)', (impl) => {
    using file = impl.mapFile(path);
    expect(file.size).toBe(size);
    for (const [at, text] of markers) {
      expect(Buffer.from(file.view(at, text.length)).toString()).toBe(text);
    }
  });

  // Longer than the 2 GiB a window guarantees: the native path gives it a buffer of its own.
  it('a single view of over 3 GiB reads right', () => {
    using file = implementations[0]?.mapFile(path) as MappedFile;
    const start = GiB - 3;
    const view = file.view(start, 3 * GiB + 100);
    expect(view.byteLength).toBe(3 * GiB + 100);
    expect(Buffer.from(view.subarray(0, 15)).toString()).toBe('straddles 1 GiB');
    const at = 4 * GiB - 2 - start;
    expect(Buffer.from(view.subarray(at, at + 15)).toString()).toBe('straddles 4 GiB');
  });
});
