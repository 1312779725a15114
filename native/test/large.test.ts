import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
});
