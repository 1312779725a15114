import { closeSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { implementationOf, MAX_VIEW_BYTES, mapFile } from '../src/index.js';
import { implementations, scratchDir, writeRandom } from './helpers.js';

const dir = scratchDir();
const native = implementationOf('native');

describe.each(implementations)('mapFile ($kind)', (impl) => {
  it('hands out the bytes of any range, bounds-checked', () => {
    const { path, bytes } = writeRandom(dir, `ranges-${impl.kind}`, 100_000);
    using file = impl.mapFile(path);
    expect(file.size).toBe(100_000);
    expect(file.path).toBe(path);
    for (const [offset, length] of [
      [0, 100_000],
      [0, 0],
      [99_999, 1],
      [100_000, 0],
      [4095, 4097],
      [12_345, 54_321],
    ] as const) {
      expect(Buffer.from(file.view(offset, length)).equals(bytes.subarray(offset, offset + length))).toBe(true);
    }
    for (const [offset, length] of [
      [0, 100_001],
      [100_001, 0],
      [99_999, 2],
    ]) {
      expect(() => file.view(offset as number, length as number)).toThrow(
        expect.objectContaining({ code: 'CKPT_OUT_OF_BOUNDS', path }),
      );
    }
    for (const [offset, length] of [
      [-1, 1],
      [0.5, 1],
      [0, Number.NaN],
      [2 ** 53, 1],
    ]) {
      expect(() => file.view(offset as number, length as number)).toThrow(
        expect.objectContaining({ code: 'CKPT_INVALID_ARGUMENT' }),
      );
    }
    file.ensureUnchanged();
    expect(file.truncated()).toBe(false);
  });

  it('maps an empty file', () => {
    const path = join(dir, `empty-${impl.kind}`);
    writeFileSync(path, '');
    using file = impl.mapFile(path);
    expect(file.size).toBe(0);
    expect(file.view(0, 0).length).toBe(0);
  });

  it('refuses use after close, while views already taken stay readable', () => {
    const { path, bytes } = writeRandom(dir, `closing-${impl.kind}`, 8192);
    const file = impl.mapFile(path);
    const view = file.view(100, 50);
    file.close();
    expect(file.closed).toBe(true);
    expect(() => file.view(0, 1)).toThrow(expect.objectContaining({ code: 'CKPT_CLOSED' }));
    expect(() => file.ensureUnchanged()).toThrow(expect.objectContaining({ code: 'CKPT_CLOSED' }));
    file.close(); // closing twice is harmless
    expect(Buffer.from(view).equals(bytes.subarray(100, 150))).toBe(true);
  });

  it('notices a file truncated after opening: zeros, truncated(), CKPT_FILE_CHANGED', () => {
    const { path, bytes } = writeRandom(dir, `shrinks-${impl.kind}`, 64 * 1024);
    using file = impl.mapFile(path);
    truncateSync(path, 4096);
    expect(Buffer.from(file.view(0, 16)).equals(bytes.subarray(0, 16))).toBe(true);
    expect(Buffer.from(file.view(32 * 1024, 16)).equals(Buffer.alloc(16))).toBe(true);
    expect(file.truncated()).toBe(true);
    expect(() => file.ensureUnchanged()).toThrow(expect.objectContaining({ code: 'CKPT_FILE_CHANGED' }));
  });

  it('notices a file modified in place after opening', () => {
    const { path } = writeRandom(dir, `modified-${impl.kind}`, 4096);
    using file = impl.mapFile(path);
    writeFileSync(path, Buffer.alloc(8192, 1));
    expect(() => file.ensureUnchanged()).toThrow(expect.objectContaining({ code: 'CKPT_FILE_CHANGED' }));
  });

  // Node 20 caps a view at 4 GiB; from Node 22 the cap (2^53 - 1) is past any file.
  it.runIf(MAX_VIEW_BYTES <= 2 ** 32)(
    `refuses a single view over ${MAX_VIEW_BYTES} bytes with CKPT_VIEW_TOO_LARGE`,
    () => {
      const path = join(dir, `huge-${impl.kind}`);
      writeFileSync(path, '');
      truncateSync(path, MAX_VIEW_BYTES + 10);
      using file = impl.mapFile(path);
      expect(() => file.view(0, MAX_VIEW_BYTES + 1)).toThrow(expect.objectContaining({ code: 'CKPT_VIEW_TOO_LARGE' }));
    },
  );
});

describe('zero-copy views (native)', () => {
  it.runIf(MAX_VIEW_BYTES > 2 ** 32)('give one view of 5 GiB where Node allows it (Node 22 and later)', () => {
    const path = join(dir, 'five-gib');
    const size = 5 * 2 ** 30;
    writeFileSync(path, 'head');
    truncateSync(path, size); // sparse: no 5 GiB written
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('tail'), 0, 4, size - 4);
    writeSync(fd, Buffer.from('past4'), 0, 5, 2 ** 32 + 1);
    closeSync(fd);
    using file = native.mapFile(path);
    const view = file.view(0, size);
    expect(view.byteLength).toBe(size);
    expect(Buffer.from(view.subarray(0, 4)).toString()).toBe('head');
    expect(Buffer.from(view.subarray(2 ** 32 + 1, 2 ** 32 + 6)).toString()).toBe('past4');
    expect(Buffer.from(view.subarray(size - 4)).toString()).toBe('tail');
    rmSync(path);
  });

  it('point into one shared mapping: a write shows in every view of those bytes', () => {
    const { path } = writeRandom(dir, 'aliasing', 10_000);
    using file = native.mapFile(path);
    expect(file.zeroCopy).toBe(true);
    const a = file.view(1000, 100);
    const b = file.view(1050, 100);
    a[60] = (a[60] as number) ^ 0xff;
    expect(b[10]).toBe(a[60]);
  });

  it('are copy-on-write: writing into a view never changes the file', () => {
    const { path, bytes } = writeRandom(dir, 'cow', 10_000);
    using file = native.mapFile(path);
    file.view(0, 10_000).fill(7);
    expect(readFileSync(path).equals(bytes)).toBe(true);
    file.ensureUnchanged();
  });

  it('outlive the handle and a garbage collection', async () => {
    const { path, bytes } = writeRandom(dir, 'outlive', 1 << 20);
    let view: Uint8Array;
    {
      const file = native.mapFile(path);
      view = file.view(4096, 4096);
      file.close();
    }
    expect(globalThis.gc, 'run with --expose-gc').toBeTypeOf('function');
    for (let i = 0; i < 5; i++) {
      globalThis.gc?.();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(Buffer.from(view).equals(bytes.subarray(4096, 8192))).toBe(true);
  });

  const mapped = (path: string) => readFileSync('/proc/self/maps', 'utf8').includes(path);

  it.skipIf(process.platform !== 'linux')('are unmapped by close() when no view is alive', () => {
    const { path } = writeRandom(dir, 'released-by-close', 1 << 16);
    const file = native.mapFile(path);
    expect(mapped(path)).toBe(true);
    file.close();
    expect(mapped(path)).toBe(false);
  });

  it.skipIf(process.platform !== 'linux')('are unmapped once the last view is garbage-collected', async () => {
    const { path } = writeRandom(dir, 'released-by-gc', 1 << 16);
    (() => {
      const file = native.mapFile(path);
      file.view(0, 100);
      file.close();
    })();
    expect(mapped(path)).toBe(true);
    for (let i = 0; i < 20 && mapped(path); i++) {
      globalThis.gc?.();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(mapped(path)).toBe(false);
  });

  it('share one external buffer instead of making one per view', () => {
    const { path } = writeRandom(dir, 'one-window', 1 << 20);
    using file = native.mapFile(path);
    const views = [file.view(0, 10), file.view(500_000, 10), file.view((1 << 20) - 10, 10)];
    expect(new Set(views.map((v) => v.buffer)).size).toBe(1);
    expect(views[1]?.byteOffset).toBe(500_000);
  });

  it('can be the same range many times over', () => {
    const { path, bytes } = writeRandom(dir, 'repeat', 4096);
    using file = native.mapFile(path);
    const views = Array.from({ length: 1000 }, () => file.view(0, 4096));
    expect(views.every((v) => v[4095] === bytes[4095])).toBe(true);
  });
});

describe('the copy fallback (what Electron requires)', () => {
  it('gives copies with the same bytes when forced with { copy: true }', () => {
    const { path, bytes } = writeRandom(dir, 'copied', 10_000);
    using file = native.mapFile(path, { copy: true });
    expect(file.zeroCopy).toBe(false);
    const a = file.view(1000, 100);
    const b = file.view(1000, 100);
    expect(Buffer.from(a).equals(bytes.subarray(1000, 1100))).toBe(true);
    a[0] = (a[0] as number) ^ 0xff;
    expect(b[0]).toBe(bytes[1000]);
  });

  it('is chosen automatically when running under Electron', () => {
    const { path } = writeRandom(dir, 'electron', 100);
    Object.defineProperty(process.versions, 'electron', { value: '33.0.0', configurable: true });
    try {
      using file = mapFile(path);
      expect(file.zeroCopy).toBe(false);
    } finally {
      delete (process.versions as Record<string, string | undefined>).electron;
    }
    using file = mapFile(path);
    expect(file.zeroCopy).toBe(process.env.CKPT_NATIVE !== 'js');
  });
});
