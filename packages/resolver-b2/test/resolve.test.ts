import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IntegrityError, loadSettings, NotFoundError, VetoedError } from '@ckpt/core';
import { type CheckpointEvents, HookManager } from '@ckpt/hooks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NetworkError } from '../src/index.js';
import { fresh, makeBucket, putObject, randomFile, resolverFor } from './support/helpers.js';
import { type FaultProxy, startProxy } from './support/proxy.js';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const bucket = 'ckpt-resolve';
let proxy: FaultProxy;

beforeAll(async () => {
  await makeBucket(bucket);
  proxy = await startProxy(Number(new URL(inject('s3Endpoint')).port));
});
afterAll(() => proxy.close());

/** No temporaries or partial files anywhere in the cache. */
function temporaries(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.ckpt-tmp'));
}

describe('resolve', () => {
  it('downloads a name from <bucket>/<prefix><name> into the cache once, verified; then serves it from the cache', async () => {
    const { path, bytes } = randomFile('convnext_tiny_22k_1k_384.pth', 3 << 20);
    const uploader = resolverFor(bucket);
    const uploaded = await uploader.upload(path);
    expect(uploaded).toMatchObject({
      key: 'modelZoo/convnext_tiny_22k_1k_384.pth',
      size: bytes.length,
      sha256: sha256(bytes),
      skipped: false,
    });

    const resolver = resolverFor(bucket, { endpoint: proxy.endpoint, partSize: 1 << 20 });
    proxy.reset();
    const progress: number[] = [];
    const local = await resolver.resolve('convnext_tiny_22k_1k_384.pth', {
      onProgress: (p) => progress.push(p.bytesDone),
    });
    expect(local).toBe(join(resolver.config.cacheDir, 'convnext_tiny_22k_1k_384.pth'));
    expect(sha256(readFileSync(local))).toBe(sha256(bytes));
    expect(progress.at(-1)).toBe(bytes.length);
    expect(proxy.requests.GET).toBe(3); // three ranged parts
    expect(readFileSync(join(resolver.config.cacheDir, 'CACHEDIR.TAG'), 'utf8')).toMatch(
      /^Signature: 8a477f597d28d172789f06886806bc55/,
    );
    expect(await resolver.cache.record('convnext_tiny_22k_1k_384.pth')).toMatchObject({
      source: `s3://${bucket}/modelZoo/convnext_tiny_22k_1k_384.pth`,
      sha256: sha256(bytes),
      size: bytes.length,
    });

    proxy.reset();
    expect(await resolver.resolve('convnext_tiny_22k_1k_384.pth', { verify: true })).toBe(local);
    expect(proxy.requests).toEqual({ GET: 0, HEAD: 0, PUT: 0, POST: 0 }); // a cache hit touches no network
    expect(temporaries(resolver.config.cacheDir)).toEqual([]);
  });

  it('resolves absolute paths as they are, and b2:// and s3:// URIs; resolveAll fetches each once', async () => {
    const { path, bytes } = randomFile('ropevit_base_patch16_224.pth', 10_000);
    const resolver = resolverFor(bucket);
    await resolver.upload(path, `s3://${bucket}/zoo/ropevit.pth`);
    expect(await resolver.resolve(path)).toBe(path);
    const viaB2 = await resolver.resolve(`b2://${bucket}/zoo/ropevit.pth`);
    expect(viaB2).toBe(join(resolver.config.cacheDir, bucket, 'zoo/ropevit.pth'));
    expect(await resolver.resolve(`s3://${bucket}/zoo/ropevit.pth`)).toBe(viaB2);
    expect(readFileSync(viaB2).equals(bytes)).toBe(true);
    await resolver.upload(path);
    const [a, b, c] = await resolver.resolveAll(['ropevit_base_patch16_224.pth', path, 'ropevit_base_patch16_224.pth']);
    expect(a).toBe(c);
    expect(b).toBe(path);
  });

  it('says every place it tried when a checkpoint is nowhere', async () => {
    const resolver = resolverFor(bucket);
    const error = await resolver.resolve('nope.pth').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toContain(join(resolver.config.cacheDir, 'nope.pth'));
    expect((error as Error).message).toContain(`s3://${bucket}/modelZoo/nope.pth`);
    await expect(resolver.resolve('/definitely/not/here.pth')).rejects.toThrow(/absolute path is used as it is/);
    const disabled = resolverFor(bucket, { bucket: { enabled: false, name: bucket, prefix: '' } });
    await expect(disabled.resolve('x.pth')).rejects.toThrow(/no bucket is enabled/);
    await expect(resolver.resolve('../escape.pth')).rejects.toThrow(/not a file name inside the cache/);
  });

  it('offline mode never touches the network and fails clearly for what is not cached', async () => {
    const { path } = randomFile('offline.pth', 1000);
    await resolverFor(bucket).upload(path);
    const online = resolverFor(bucket, { endpoint: proxy.endpoint });
    await online.resolve('offline.pth');
    const offline = resolverFor(bucket, {
      endpoint: proxy.endpoint,
      cacheDir: online.config.cacheDir,
      offline: loadSettings({ env: { CKPT_OFFLINE: '1' }, configFile: false, resolverFile: false }).resolver.offline,
    });
    proxy.reset();
    expect(await offline.resolve('offline.pth')).toBe(join(online.config.cacheDir, 'offline.pth'));
    await expect(offline.resolve('never-downloaded.pth')).rejects.toThrow(/offline mode: nothing is downloaded/);
    await expect(offline.upload(path)).rejects.toThrow(/offline mode/);
    expect(proxy.requests).toEqual({ GET: 0, HEAD: 0, PUT: 0, POST: 0 });
  });

  it('refuses an object whose bytes do not match its SHA-256, keeping nothing', async () => {
    const bytes = new Uint8Array(100_000).fill(7);
    await putObject(bucket, 'modelZoo/corrupted.pth', bytes, { sha256: sha256(new Uint8Array(100_000).fill(8)) });
    const resolver = resolverFor(bucket);
    const error = await resolver.resolve('corrupted.pth').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as Error).message).toMatch(/does not match its SHA-256/);
    expect(existsSync(join(resolver.config.cacheDir, 'corrupted.pth'))).toBe(false);
    expect(temporaries(resolver.config.cacheDir)).toEqual([]);
  });

  it('checks an object without our digest against its ETag MD5', async () => {
    const bytes = new Uint8Array(5000).fill(3);
    await putObject(bucket, 'modelZoo/foreign.pth', bytes);
    const local = await resolverFor(bucket).resolve('foreign.pth');
    expect(readFileSync(local).equals(Buffer.from(bytes))).toBe(true);
  });
});

describe('faults', () => {
  let object: { bytes: Buffer };
  beforeAll(async () => {
    const { path, bytes } = randomFile('faulty.pth', 4 << 20);
    await resolverFor(bucket).upload(path);
    object = { bytes };
  });

  it('resumes a dropped connection with a Range request from the last byte received', async () => {
    const resolver = resolverFor(bucket, { endpoint: proxy.endpoint, partSize: 4 << 20, concurrency: 1 });
    proxy.reset();
    proxy.dropNext(1_500_000);
    const local = await resolver.resolve('faulty.pth');
    expect(readFileSync(local).equals(object.bytes)).toBe(true);
    expect(proxy.requests.GET).toBe(2);
    expect(proxy.bytesDown).toBeLessThan(object.bytes.length + 200_000); // resumed, not restarted
  });

  it('a stalled transfer is aborted by the watchdog and retried', async () => {
    const resolver = resolverFor(bucket, { endpoint: proxy.endpoint, stallTimeoutMs: 300 });
    proxy.reset();
    proxy.stallNext(100_000);
    const local = await resolver.resolve('faulty.pth');
    expect(readFileSync(local).equals(object.bytes)).toBe(true);
    expect(proxy.requests.GET).toBeGreaterThanOrEqual(2);
  });

  it('the server going away mid-download leaves no partial file; a retry completes', async () => {
    const resolver = resolverFor(bucket, { endpoint: proxy.endpoint, retries: 2, partSize: 1 << 20, concurrency: 1 });
    proxy.reset();
    proxy.stallNext(500_000); // hold the transfer mid-object...
    const pending = resolver.resolve('faulty.pth');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await proxy.kill(); // ...and kill the server under it
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect(existsSync(join(resolver.config.cacheDir, 'faulty.pth'))).toBe(false);
    expect(temporaries(resolver.config.cacheDir)).toEqual([]);
    await proxy.restart();
    const local = await resolver.resolve('faulty.pth');
    expect(readFileSync(local).equals(object.bytes)).toBe(true);
  });

  it('by default one stream reads a fast server; a slow first stream gets the rest split among four', async () => {
    const { path, bytes } = randomFile('split.pth', 48 << 20);
    await resolverFor(bucket).upload(path);
    proxy.reset();
    const fast = resolverFor(bucket, { endpoint: proxy.endpoint, splitBelowBytesPerSecond: 0 });
    expect(readFileSync(await fast.resolve('split.pth')).equals(bytes)).toBe(true);
    expect(proxy.requests.GET).toBe(1);
    proxy.reset();
    // Every stream counts as slow, measured at once: the split happens with the first stream just begun.
    const slow = resolverFor(bucket, {
      endpoint: proxy.endpoint,
      splitBelowBytesPerSecond: Number.POSITIVE_INFINITY,
      splitAfterMs: 1,
    });
    expect(readFileSync(await slow.resolve('split.pth')).equals(bytes)).toBe(true);
    expect(proxy.requests.GET).toBe(4); // the first stream, shortened, and three for the rest
  });

  it('an object replaced during the download is refused, not mixed', async () => {
    const { path } = randomFile('changing.pth', 2 << 20);
    await resolverFor(bucket).upload(path);
    const hooks = new HookManager<CheckpointEvents>();
    hooks.register('replace', async () => putObject(bucket, 'modelZoo/changing.pth', new Uint8Array(2 << 20).fill(1)), [
      'beforeDownload',
    ]);
    const resolver = resolverFor(bucket, { hooks });
    await expect(resolver.resolve('changing.pth')).rejects.toThrow(/changed while it was being downloaded/);
    expect(temporaries(resolver.config.cacheDir)).toEqual([]);
  });
});

describe('uploads and hooks', () => {
  it('multipart upload round trip; an unchanged file is skipped', async () => {
    const { path, bytes } = randomFile('big-model.safetensors', 12 << 20);
    const events: string[] = [];
    const hooks = new HookManager<CheckpointEvents>();
    hooks.register(
      'watch',
      { handle: (event, context) => void events.push(`${event}:${'skipped' in context ? context.skipped : ''}`) },
      ['beforeUpload', 'afterUpload', 'beforeDownload', 'afterDownload'],
    );
    const resolver = resolverFor(bucket, { endpoint: proxy.endpoint, hooks });
    proxy.reset();
    const first = await resolver.upload(path, undefined, { multipartThreshold: 5 << 20, multipartPartSize: 5 << 20 });
    expect(first).toMatchObject({ skipped: false, sha256: sha256(bytes), size: bytes.length });
    expect(proxy.requests.PUT).toBe(3); // three parts
    const second = await resolver.upload(path, undefined, { multipartThreshold: 5 << 20 });
    expect(second.skipped).toBe(true);
    const other = resolverFor(bucket, { hooks });
    const local = await other.resolve('big-model.safetensors');
    expect(sha256(readFileSync(local))).toBe(sha256(bytes));
    expect(events).toEqual([
      'beforeUpload:',
      'afterUpload:false',
      'beforeUpload:',
      'afterUpload:true',
      'beforeDownload:',
      'afterDownload:',
    ]);
  });

  it('a beforeDownload hook can veto', async () => {
    const { path } = randomFile('vetoed.pth', 100);
    await resolverFor(bucket).upload(path);
    const hooks = new HookManager<CheckpointEvents>();
    hooks.register('no', (_c, control) => control.veto('metered connection'), ['beforeDownload']);
    await expect(resolverFor(bucket, { hooks }).resolve('vetoed.pth')).rejects.toBeInstanceOf(VetoedError);
  });

  it('refuses to upload what is not there', async () => {
    const resolver = resolverFor(bucket);
    await expect(resolver.upload(join(fresh('nothing'), 'x.pth'))).rejects.toBeInstanceOf(NotFoundError);
  });
});
