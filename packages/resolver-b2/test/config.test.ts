import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, InvalidArgumentError, loadSettings } from '@ckpt/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCredentials, Resolver, regionOf, resolveConfig, resolverConfig } from '../src/index.js';
import { fresh, makeBucket, randomFile, resolverFor } from './support/helpers.js';

describe('configuration', () => {
  it("reads seed 002's YAML (ENV.INPUT.CACHE_DIR, BUCKET.ENABLED / NAME / PATH_PREFIX)", () => {
    const dir = fresh('config');
    mkdirSync(dir);
    const file = join(dir, 'linnaeus.yaml');
    writeFileSync(
      file,
      `ENV:\n  INPUT:\n    CACHE_DIR: "/data/checkpoints"\n    BUCKET:\n      ENABLED: True\n      NAME: "linnaeus-checkpoints"\n      PATH_PREFIX: "modelZoo/"\n`,
    );
    expect(resolveConfig({ configFile: file, env: {} })).toEqual({
      cacheDir: '/data/checkpoints',
      offline: false,
      bucket: { enabled: true, name: 'linnaeus-checkpoints', prefix: 'modelZoo/' },
    });
    writeFileSync(file, `ENV:\n  INPUT:\n    OFFLINE: true\n    BUCKET:\n      ENDPOINT: "http://127.0.0.1:9000"\n`);
    expect(resolveConfig({ configFile: file, env: {} })).toMatchObject({
      offline: true,
      bucket: { enabled: false, endpoint: 'http://127.0.0.1:9000' },
    });
  });

  it('one precedence: code > environment > file > defaults, setting by setting', () => {
    const dir = fresh('config');
    mkdirSync(dir);
    const file = join(dir, 'resolver.json');
    writeFileSync(
      file,
      JSON.stringify({
        cacheDir: '/from/file',
        offline: false,
        bucket: { enabled: true, name: 'file-bucket', prefix: 'p/', region: 'file-region' },
      }),
    );
    // The file alone.
    expect(resolveConfig({ configFile: file, env: {} })).toMatchObject({
      cacheDir: '/from/file',
      offline: false,
      bucket: { name: 'file-bucket', prefix: 'p/', region: 'file-region' },
    });
    // The environment beats the file.
    const env = {
      CKPT_BUCKET_NAME: 'env-bucket',
      CKPT_OFFLINE: 'true',
      CKPT_CACHE_DIR: '/from/env',
      CKPT_S3_REGION: 'env-region',
    };
    expect(resolveConfig({ configFile: file, env })).toMatchObject({
      cacheDir: '/from/env',
      offline: true,
      bucket: { enabled: true, name: 'env-bucket', prefix: 'p/', region: 'env-region' },
    });
    // Code beats the environment, and an undefined code setting hides nothing.
    const config = resolveConfig({
      cacheDir: '/from/code',
      offline: false,
      bucket: { name: 'code-bucket', endpoint: 'https://s3.us-west-004.backblazeb2.com', region: undefined },
      configFile: file,
      env,
    });
    expect(config).toEqual({
      cacheDir: '/from/code',
      offline: false,
      bucket: {
        enabled: true,
        name: 'code-bucket',
        prefix: 'p/',
        endpoint: 'https://s3.us-west-004.backblazeb2.com',
        region: 'env-region',
      },
    });
    expect(resolveConfig({ env: { CKPT_RESOLVER_CONFIG: file } }).bucket.name).toBe('file-bucket');
    // A ckpt.config.yaml's resolver section ranks above CKPT_RESOLVER_CONFIG and below the environment.
    const cliFile = join(dir, 'ckpt.config.yaml');
    writeFileSync(cliFile, 'resolver:\n  cacheDir: /from/cli-file\n  offline: true\n  bucket:\n    name: cli-bucket\n');
    const layered = (env: Record<string, string>, flags = {}) =>
      resolverConfig(loadSettings({ configFile: cliFile, resolverFile: file, env, flags }).resolver);
    expect(layered({})).toMatchObject({
      cacheDir: '/from/cli-file',
      offline: true,
      bucket: { name: 'cli-bucket', prefix: 'p/' },
    });
    expect(layered({ CKPT_OFFLINE: '0', CKPT_CACHE_DIR: '/from/env' })).toMatchObject({
      cacheDir: '/from/env',
      offline: false,
    });
    expect(layered({ CKPT_OFFLINE: '0' }, { 'resolver.offline': true }).offline).toBe(true);
    // Defaults last.
    expect(resolveConfig({ env: {} })).toMatchObject({
      offline: false,
      bucket: { enabled: false, name: '', prefix: '' },
    });
  });

  it('reads flat JSON with an endpoint; B2 regions come from the endpoint', () => {
    const dir = fresh('config');
    mkdirSync(dir);
    const file = join(dir, 'resolver.json');
    writeFileSync(
      file,
      JSON.stringify({ bucket: { enabled: true, name: 'b', endpoint: 'https://s3.us-west-004.backblazeb2.com' } }),
    );
    expect(regionOf(resolveConfig({ configFile: file, env: {} }).bucket)).toBe('us-west-004');
  });

  it('the Resolver reads no environment and no file itself, and says so to code that passes them', () => {
    const saved = process.env.CKPT_OFFLINE;
    process.env.CKPT_OFFLINE = '1';
    try {
      expect(new Resolver({ cacheDir: fresh('cache') }).config.offline).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.CKPT_OFFLINE;
      else process.env.CKPT_OFFLINE = saved;
    }
    for (const gone of [{ env: {} }, { configFile: 'x.yaml' }, { fileSettings: {} }]) {
      expect(() => new Resolver(gone as object)).toThrow(/takes settings already resolved/);
    }
  });

  it('refuses a bad file or an enabled bucket without a name', () => {
    const dir = fresh('config');
    mkdirSync(dir);
    writeFileSync(join(dir, 'bad.yaml'), 'ENV: [unclosed');
    expect(() => resolveConfig({ configFile: join(dir, 'bad.yaml'), env: {} })).toThrow(FormatError);
    expect(() => resolveConfig({ configFile: join(dir, 'missing.yaml'), env: {} })).toThrow(InvalidArgumentError);
    expect(() => resolveConfig({ bucket: { enabled: true }, env: {} })).toThrow(/enabled but has no name/);
  });

  it('takes credentials from the environment or a credentials file, and never shows the key', () => {
    expect(loadCredentials({ B2_APPLICATION_KEY_ID: 'id', B2_APPLICATION_KEY: 'k' })).toEqual({
      accessKeyId: 'id',
      secretAccessKey: 'k',
    });
    expect(loadCredentials({ AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 's' })).toEqual({
      accessKeyId: 'a',
      secretAccessKey: 's',
    });
    const dir = fresh('creds');
    mkdirSync(dir);
    writeFileSync(join(dir, 'ini'), '# B2\nkey_id = 0040abc\nkey = K004-super-secret\n');
    expect(loadCredentials({ CKPT_CREDENTIALS_FILE: join(dir, 'ini') })).toEqual({
      accessKeyId: '0040abc',
      secretAccessKey: 'K004-super-secret',
    });
    writeFileSync(join(dir, 'json'), JSON.stringify({ keyId: 'j', key: 'K004-json-secret' }));
    expect(loadCredentials({ CKPT_CREDENTIALS_FILE: join(dir, 'json') })?.accessKeyId).toBe('j');
    writeFileSync(join(dir, 'broken'), 'key_id = only-the-id\n');
    const error = (() => {
      try {
        loadCredentials({ CKPT_CREDENTIALS_FILE: join(dir, 'broken') });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.message).toMatch(/has no key_id and key/);
    expect(loadCredentials({ CKPT_CREDENTIALS_FILE: join(dir, 'absent') })).toBeUndefined();
    const resolver = resolverFor('any', { credentials: { accessKeyId: 'id', secretAccessKey: 'K004-never-printed' } });
    expect(JSON.stringify(resolver.config)).not.toContain('K004');
  });
});

describe('cache management', () => {
  const bucket = 'ckpt-cache';
  beforeAll(() => makeBucket(bucket));

  it('lists, sizes, verifies and prunes by age and by total size', async () => {
    const resolver = resolverFor(bucket);
    for (const [name, size] of [
      ['a.pth', 1000],
      ['b.pth', 2000],
      ['c.pth', 3000],
    ] as const) {
      const { path } = randomFile(name, size);
      await resolver.upload(path);
      await resolver.resolve(name);
    }
    writeFileSync(join(resolver.config.cacheDir, 'by-hand.pth'), 'put here by hand');
    expect((await resolver.cache.list()).map((e) => [e.name, e.size])).toEqual([
      ['a.pth', 1000],
      ['b.pth', 2000],
      ['by-hand.pth', 16],
      ['c.pth', 3000],
    ]);
    expect(await resolver.cache.size()).toBe(6016);
    writeFileSync(join(resolver.config.cacheDir, 'b.pth'), Buffer.alloc(2000, 1)); // bit rot
    expect((await resolver.cache.verify()).map((e) => [e.name, e.status])).toEqual([
      ['a.pth', 'ok'],
      ['b.pth', 'corrupted'],
      ['by-hand.pth', 'unknown'],
      ['c.pth', 'ok'],
    ]);
    await expect(resolver.resolve('b.pth', { verify: true })).rejects.toThrow(/no longer matches its SHA-256/);

    const day = 24 * 3600_000;
    const path = (name: string) => join(resolver.config.cacheDir, name);
    utimesSync(path('a.pth'), new Date(Date.now() - 10 * day), new Date(Date.now() - 10 * day));
    utimesSync(path('c.pth'), new Date(Date.now() - 5 * day), new Date(Date.now() - 5 * day));
    expect((await resolver.cache.prune({ olderThanMs: 7 * day, dryRun: true })).map((e) => e.name)).toEqual(['a.pth']);
    expect((await resolver.cache.list()).length).toBe(4);
    expect((await resolver.cache.prune({ olderThanMs: 7 * day })).map((e) => e.name)).toEqual(['a.pth']);
    expect((await resolver.cache.prune({ maxBytes: 2100 })).map((e) => e.name)).toEqual(['c.pth']); // least recently used first
    expect((await resolver.cache.list()).map((e) => e.name)).toEqual(['b.pth', 'by-hand.pth']);
  });
});
