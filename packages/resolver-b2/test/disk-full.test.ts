// A full disk under the resolver's cache (see docs/formats-and-safety.md,
// "Faults"): the cache lives on a tmpfs of a few megabytes that the test
// fills. A download fails with a typed error naming the file, leaves nothing
// under the final name nor any temporary, keeps what the cache held, and
// succeeds once space is freed.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CkptError } from '@ckpt/core';
import { faultsUnavailable, type SmallDisk, smallDisk } from '@ckpt/testkit/faults';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBucket, randomFile, resolverFor } from './support/helpers.js';

const unavailable = faultsUnavailable();
const bucket = 'ckpt-disk-full';
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe.skipIf(unavailable)('a full disk under the cache', () => {
  let disk: SmallDisk;

  beforeAll(async () => {
    await makeBucket(bucket);
    disk = smallDisk(8 << 20);
  });
  afterAll(() => disk?.close());

  it('a download fails typed, leaves no partial file, keeps the cache, and succeeds once space is freed', async () => {
    const cacheDir = join(disk.path, 'cache');
    const small = randomFile('small.bin', 256 << 10);
    const big = randomFile('big.bin', 3 << 20);
    const uploader = resolverFor(bucket);
    await uploader.upload(small.path);
    await uploader.upload(big.path);
    const resolver = resolverFor(bucket, { cacheDir, partSize: 1 << 20 });
    const kept = await resolver.resolve('small.bin');

    disk.fill(512 << 10);
    const error = await resolver.resolve('big.bin').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CkptError);
    expect((error as CkptError).code, (error as Error).message).toBe('CKPT_NO_SPACE');
    expect((error as CkptError).message).toContain(cacheDir);
    expect(existsSync(join(cacheDir, 'big.bin'))).toBe(false);
    expect(readdirSync(cacheDir, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.ckpt-tmp'))).toEqual(
      [],
    );
    expect(sha256(readFileSync(kept))).toBe(sha256(small.bytes));
    expect(await resolver.resolve('small.bin', { verify: true })).toBe(kept);

    disk.free();
    const local = await resolver.resolve('big.bin');
    expect(sha256(readFileSync(local))).toBe(sha256(big.bytes));
  });
});
