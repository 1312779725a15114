import { closeSync, openSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Progress, Sha256, sha256File } from '../src/index.js';
import { implementations, scratchDir, sha256, writeRandom } from './helpers.js';

const MiB = 1 << 20;
const dir = scratchDir();

// Sizes around every boundary either path has: the 1 MiB read chunk and mapping
// threshold, the 16 MiB hashing window, and the 64 MiB prefetch threshold.
const boundarySizes = [0, 1, 55, 64, MiB - 1, MiB, MiB + 1, 16 * MiB - 1, 16 * MiB, 16 * MiB + 1, 64 * MiB + 4097];

describe.each(implementations)('sha256File ($kind)', (impl) => {
  it.each(boundarySizes)('matches node:crypto for %i bytes', async (size) => {
    const { path, bytes } = writeRandom(dir, `b${size}`, size);
    expect(await impl.sha256File(path)).toBe(sha256(bytes));
  });

  it('matches node:crypto over many random sizes', async () => {
    for (let i = 0; i < 40; i++) {
      const size = Math.floor(Math.random() ** 3 * 40 * MiB);
      const { path, bytes } = writeRandom(dir, `r${i}`, size);
      expect(await impl.sha256File(path), `size ${size}`).toBe(sha256(bytes));
    }
  });

  it('reports progress up to the total, never going back', async () => {
    const { path } = writeRandom(dir, 'progress', 48 * MiB + 3);
    const seen: Progress[] = [];
    await impl.sha256File(path, { onProgress: (p) => seen.push(p) });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)).toEqual({ bytesDone: 48 * MiB + 3, bytesTotal: 48 * MiB + 3 });
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]?.bytesDone).toBeGreaterThanOrEqual(seen[i - 1]?.bytesDone ?? 0);
    }
  });

  it('reports a file truncated while it is hashed as CKPT_FILE_CHANGED', async () => {
    const path = join(dir, `shrinking-${impl.kind}`);
    closeSync(openSync(path, 'w'));
    truncateSync(path, 512 * MiB); // sparse: quick to make, hashed like any other file
    let truncated = false;
    const result = impl.sha256File(path, {
      onProgress: () => {
        if (!truncated) truncateSync(path, 8 * MiB);
        truncated = true;
      },
    });
    await expect(result).rejects.toMatchObject({ code: 'CKPT_FILE_CHANGED', path });
  });

  it('reports a file appended to while it is hashed as CKPT_FILE_CHANGED', async () => {
    const { path } = writeRandom(dir, `growing-${impl.kind}`, 256 * MiB);
    let appended = false;
    const result = impl.sha256File(path, {
      onProgress: () => {
        if (appended) return;
        appended = true;
        const fd = openSync(path, 'a');
        writeSync(fd, 'more bytes');
        closeSync(fd);
      },
    });
    await expect(result).rejects.toMatchObject({ code: 'CKPT_FILE_CHANGED' });
  });
});

describe.each(implementations)('sha256Files ($kind)', (impl) => {
  it('hashes many files and keeps the input order', async () => {
    const files = [3, 0, 2 * MiB, 17 * MiB, 5, MiB].map((size, i) => writeRandom(dir, `many${i}`, size));
    const digests = await impl.sha256Files(files.map((f) => f.path));
    expect(digests).toEqual(files.map((f) => sha256(f.bytes)));
  });

  it('sums progress over all files', async () => {
    const files = [5 * MiB, 20 * MiB, 7].map((size, i) => writeRandom(dir, `sum${i}`, size));
    let last: Progress | undefined;
    await impl.sha256Files(
      files.map((f) => f.path),
      { onProgress: (p) => (last = p) },
    );
    expect(last).toEqual({ bytesDone: 25 * MiB + 7, bytesTotal: 25 * MiB + 7 });
  });

  it('fails with the first missing file, naming it', async () => {
    const ok = writeRandom(dir, 'present', 10);
    const missing = join(dir, 'absent');
    await expect(impl.sha256Files([ok.path, missing])).rejects.toMatchObject({ code: 'CKPT_NOT_FOUND', path: missing });
  });

  it('returns nothing for no files', async () => {
    expect(await impl.sha256Files([])).toEqual([]);
  });
});

describe.each(implementations)('streaming Sha256 ($kind)', (impl) => {
  it('equals the one-shot digest however the bytes are split', () => {
    const { bytes } = writeRandom(dir, 'stream', 3 * MiB + 17);
    for (const piece of [1, 63, 64, 65, 4096, MiB]) {
      const hasher = impl.createSha256();
      for (let at = 0; at < bytes.length; at += piece) hasher.update(bytes.subarray(at, at + piece));
      expect(hasher.digest()).toBe(sha256(bytes));
    }
    expect(impl.createSha256().digest()).toBe(sha256(new Uint8Array(0)));
  });

  it('mixes in file ranges, in order, with updates from memory; refuses a range past the end', async () => {
    const { path, bytes } = writeRandom(dir, 'ranges', 3 * MiB + 17);
    const hasher = impl.createSha256().update(bytes.subarray(0, 10));
    await hasher.updateFromFile(path, 10, MiB + 5);
    hasher.update(bytes.subarray(MiB + 15, 2 * MiB));
    await hasher.updateFromFile(path, 2 * MiB, bytes.length - 2 * MiB);
    await hasher.updateFromFile(path, 0, 0);
    expect(hasher.digest()).toBe(sha256(bytes));
    await expect(impl.createSha256().updateFromFile(path, bytes.length - 1, 2)).rejects.toMatchObject({
      code: 'CKPT_OUT_OF_BOUNDS',
    });
    await expect(impl.createSha256().updateFromFile(join(dir, 'absent'), 0, 1)).rejects.toMatchObject({
      code: 'CKPT_NOT_FOUND',
    });
  });

  it('refuses to be used after digest()', () => {
    const hasher = impl.createSha256().update(new Uint8Array([1]));
    hasher.digest();
    expect(() => hasher.digest()).toThrow(expect.objectContaining({ code: 'CKPT_INVALID_ARGUMENT' }));
    expect(() => hasher.update(new Uint8Array([1]))).toThrow(
      expect.objectContaining({ code: 'CKPT_INVALID_ARGUMENT' }),
    );
  });
});

describe('the selected implementation', () => {
  it('exposes the same digests through the package entry points', async () => {
    const { path, bytes } = writeRandom(dir, 'entry', 1234567);
    expect(await sha256File(path)).toBe(sha256(bytes));
    expect(new Sha256().update(bytes.subarray(0, 5)).update(bytes.subarray(5)).digest()).toBe(sha256(bytes));
  });
});

describe.each(implementations)('a progress callback that throws ($kind)', (impl) => {
  it('rejects the operation with its error instead of crashing', async () => {
    const { path } = writeRandom(dir, `throws-${impl.kind}`, 3 * MiB);
    const boom = new Error('progress bar broke');
    await expect(
      impl.sha256File(path, {
        onProgress: () => {
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
  });
});

describe.each(implementations)('crc32Many ($kind)', (impl) => {
  it('matches zlib for every buffer, in order', async () => {
    const { crc32 } = await import('node:zlib');
    const buffers = [0, 1, 9, 1000, 5 * MiB + 3].map((size) => new Uint8Array(size).map((_, i) => (i * 7) & 0xff));
    expect(await impl.crc32Many(buffers)).toEqual(buffers.map((b) => crc32(b)));
    expect(await impl.crc32Many([Buffer.from('123456789')])).toEqual([0xcbf43926]);
    expect(await impl.crc32Many([])).toEqual([]);
  });
});
