import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FolderListing, NativeErrorCode, scanFolder } from '../src/index.js';
import { implementations, scratchDir } from './helpers.js';

const root = scratchDir();

/** A folder with a file of each size, a non-ASCII name, a subfolder and links in and out. */
function populated(name: string): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'a.safetensors'), 'x'.repeat(1234));
  writeFileSync(join(dir, 'empty.bin'), '');
  writeFileSync(join(dir, 'modèle-é.pt'), 'xy');
  writeFileSync(join(dir, 'sub', 'deep.bin'), 'not listed');
  symlinkSync('/etc/hostname', join(dir, 'out.bin'));
  symlinkSync('a.safetensors', join(dir, 'in.bin'));
  return dir;
}

function describeListing(listing: FolderListing) {
  return [...listing.names].sort().map((name) => [name, listing.kind(name), listing.fileSize(name)]);
}

describe.each(implementations)('scanFolder ($kind)', (impl) => {
  it('lists every entry with its kind and a file size, following no link', async () => {
    const dir = populated(`listing-${impl.kind}`);
    const listing = new FolderListing(await impl.scanFolder(dir));
    expect(describeListing(listing)).toEqual([
      ['a.safetensors', 'file', 1234],
      ['empty.bin', 'file', 0],
      ['in.bin', 'link', undefined],
      ['modèle-é.pt', 'file', 2],
      ['out.bin', 'link', undefined],
      ['sub', 'folder', undefined],
    ]);
    expect(listing.has('deep.bin')).toBe(false);
    expect(listing.kind('nothing')).toBeUndefined();
  });

  it('reports a pipe as other, and a missing folder as CKPT_NOT_FOUND', async () => {
    const dir = join(root, `special-${impl.kind}`);
    mkdirSync(dir);
    execFileSync('mkfifo', [join(dir, 'pipe.bin')]);
    expect(new FolderListing(await impl.scanFolder(dir)).kind('pipe.bin')).toBe('other');
    await expect(impl.scanFolder(join(root, 'gone'))).rejects.toMatchObject({
      code: NativeErrorCode.NotFound,
    });
  });

  it('refuses a file in place of the folder with a typed error', async () => {
    const file = join(root, `plain-${impl.kind}`);
    writeFileSync(file, 'x');
    await expect(impl.scanFolder(file)).rejects.toMatchObject({
      code: expect.stringMatching(/^CKPT_/),
    });
  });
});

it('the exported scanFolder agrees with both twins on thousands of entries', async () => {
  const dir = join(root, 'many');
  mkdirSync(dir);
  for (let i = 0; i < 3000; i++) writeFileSync(join(dir, `c-${i}.bin`), 'z'.repeat(i % 17));
  const listed = describeListing(await scanFolder(dir));
  expect(listed).toHaveLength(3000);
  for (const impl of implementations)
    expect(describeListing(new FolderListing(await impl.scanFolder(dir)))).toEqual(listed);
  expect(listed.find(([name]) => name === 'c-35.bin')).toEqual(['c-35.bin', 'file', 1]);
});
