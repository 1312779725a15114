import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Progress, TEMP_SUFFIX, writeFileAtomic } from '../src/index.js';
import { implementations, isRoot, scratchDir, sha256 } from './helpers.js';

const dir = scratchDir();
const temporaries = (folder: string) => readdirSync(folder).filter((n) => n.endsWith(TEMP_SUFFIX));

describe.each(implementations)('writeFileAtomic ($kind)', (impl) => {
  it('writes the chunks, returns their digest and size, and leaves no temporary', async () => {
    const target = join(dir, `model-${impl.kind}.bin`);
    const chunks = [Buffer.from('header'), new Uint8Array(0), new Uint8Array(3 << 20).fill(9), Buffer.from('tail')];
    const expected = Buffer.concat(chunks);
    const result = await impl.writeFileAtomic(target, chunks);
    expect(result).toEqual({ sha256: sha256(expected), size: expected.length });
    expect(readFileSync(target).equals(expected)).toBe(true);
    expect(temporaries(dir)).toEqual([]);
  });

  it('replaces an existing file whole', async () => {
    const target = join(dir, `replace-${impl.kind}.bin`);
    writeFileSync(target, 'the previous checkpoint, longer than the new one');
    await impl.writeFileAtomic(target, [Buffer.from('new')], { fsync: false });
    expect(readFileSync(target, 'utf8')).toBe('new');
  });

  it('writes an empty file', async () => {
    const target = join(dir, `empty-${impl.kind}.bin`);
    expect(await impl.writeFileAtomic(target, [])).toEqual({ sha256: sha256(new Uint8Array(0)), size: 0 });
    expect(statSync(target).size).toBe(0);
  });

  it('reports write progress up to the total', async () => {
    const target = join(dir, `progress-${impl.kind}.bin`);
    const seen: Progress[] = [];
    await impl.writeFileAtomic(target, [new Uint8Array(40 << 20)], { onProgress: (p) => seen.push(p) });
    expect(seen.at(-1)).toEqual({ bytesDone: 40 << 20, bytesTotal: 40 << 20 });
  });

  it('creates files with the usual permissions, not the 0600 of a temporary', async () => {
    const target = join(dir, `mode-${impl.kind}.bin`);
    await impl.writeFileAtomic(target, [Buffer.from('x')]);
    const umask = process.umask();
    expect(statSync(target).mode & 0o777).toBe(0o666 & ~umask);
  });
});

describe('writeFileAtomic accepts any iterable of chunks', () => {
  it('such as a generator', async () => {
    const target = join(dir, 'generated.bin');
    function* parts() {
      yield Buffer.from('a');
      yield Buffer.from('b');
    }
    expect((await writeFileAtomic(target, parts())).size).toBe(2);
    expect(readFileSync(target, 'utf8')).toBe('ab');
  });
});

// A full disk, on a 1 MiB tmpfs: mounting needs root, so elsewhere this is skipped.
describe.skipIf(!isRoot)('on a full disk', () => {
  const mount = join(dir, 'tiny-disk');
  mkdirSync(mount);
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]).status === 0;
  afterAll(() => {
    if (mounted) spawnSync('umount', [mount]);
  });

  it.each(implementations)(
    'fails with CKPT_NO_SPACE, keeps the old file and removes the temporary ($kind)',
    async (impl) => {
      expect(mounted).toBe(true);
      const target = join(mount, `ckpt-${impl.kind}.bin`);
      writeFileSync(target, 'saved before');
      await expect(impl.writeFileAtomic(target, [new Uint8Array(2 << 20)])).rejects.toMatchObject({
        code: 'CKPT_NO_SPACE',
        path: target,
      });
      expect(readFileSync(target, 'utf8')).toBe('saved before');
      expect(temporaries(mount)).toEqual([]);
    },
  );
});
