import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCkptError } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import { Cache } from '../src/index.js';

// A cache folder is someone's disk: links in it must not let listing, pruning or downloading reach outside.
function setUp() {
  const base = mkdtempSync(join(tmpdir(), 'ckpt-cache-hostile-'));
  const dir = join(base, 'cache');
  const outside = join(base, 'outside');
  mkdirSync(join(dir, '.ckpt-meta'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, 'precious.pt'), 'do not touch');
  writeFileSync(join(dir, 'model.pt'), 'cached');
  return { dir, outside, cache: new Cache(dir) };
}

describe('the cache never follows a link out of itself', () => {
  it('list and prune ignore a linked folder: nothing outside is listed or deleted', async () => {
    const { dir, outside, cache } = setUp();
    symlinkSync(outside, join(dir, 'linked'));
    symlinkSync(join(outside, 'precious.pt'), join(dir, 'file-link.pt'));
    expect((await cache.list()).map((e) => e.name)).toEqual(['model.pt']);
    const removed = await cache.prune({ maxBytes: 0 });
    expect(removed.map((e) => e.name)).toEqual(['model.pt']);
    expect(existsSync(join(outside, 'precious.pt'))).toBe(true);
  });

  // A loop would never end: the test's own timeout is the watchdog.
  it('two links to the cache itself do not make listing loop', async () => {
    const { dir, cache } = setUp();
    symlinkSync('.', join(dir, 'a'));
    symlinkSync('.', join(dir, 'b'));
    expect((await cache.list()).map((e) => e.name)).toEqual(['model.pt']);
  }, 10_000);

  it('a name through a linked folder is refused before anything is written', () => {
    const { dir, outside, cache } = setUp();
    symlinkSync(outside, join(dir, 'linked'));
    let error: unknown;
    try {
      cache.pathOf('linked/new.pt');
    } catch (e) {
      error = e;
    }
    expect(isCkptError(error, 'CKPT_FORMAT'), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/leads outside the cache/);
  });

  it('a malformed record counts as none: verify says unknown instead of trusting it', async () => {
    const { dir, cache } = setUp();
    writeFileSync(join(dir, '.ckpt-meta', 'model.pt.json'), JSON.stringify({ sha256: { toString: 1 }, size: 'x' }));
    expect(await cache.record('model.pt')).toBeUndefined();
    expect((await cache.verify()).map((v) => v.status)).toEqual(['unknown']);
  });
});
