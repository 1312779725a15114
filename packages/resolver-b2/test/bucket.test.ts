import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  FormatError,
  fromTypedArray,
  IntegrityError,
  NetworkError,
  type Tensor,
  TrackedRun,
  type Tracker,
  tensorsEqual,
  UnsupportedError,
  VetoedError,
} from '@ckpt/core';
import { type CheckpointEvents, HookManager } from '@ckpt/hooks';
import { safetensors } from '@ckpt/storage-safetensors';
import { connect } from '@ckpt/tracker-sqlite';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BucketCheckpoints, type BucketCheckpointsOptions } from '../src/index.js';
import { credentials, directClient, fresh, makeBucket } from './support/helpers.js';
import { type FaultProxy, startProxy } from './support/proxy.js';

const child = fileURLToPath(new URL('./support/bucket-child.mjs', import.meta.url));
let proxy: FaultProxy;
let bucket: string;
let experiments = 0;

beforeAll(async () => {
  proxy = await startProxy(Number(new URL(inject('s3Endpoint')).port));
  bucket = await makeBucket(`bucket-checkpoints-${Date.now()}`);
});
afterAll(() => proxy.close());

/** A client through the fault proxy, making one attempt per request (retries are ckpt's). */
function proxiedClient(): S3Client {
  return new S3Client({
    endpoint: proxy.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
}

function open(options: Partial<BucketCheckpointsOptions> = {}) {
  return BucketCheckpoints.open({
    location: `s3://${bucket}/runs`,
    experiment: `exp-${++experiments}`,
    storage: safetensors,
    client: proxiedClient(),
    cacheDir: fresh('bucket-cache'),
    partSize: 5 << 20,
    retryDelayMs: 10,
    ...options,
  });
}

/** A state of `megabytes` MiB: tensor i holds i + seed everywhere. */
function state(megabytes: number, seed = 0): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (let i = 0; i < 4; i++)
    out[`layers.${i}.weight`] = fromTypedArray(new Float32Array((megabytes << 20) / 16).fill(i + seed));
  return out;
}

async function uploadsUnder(prefix: string): Promise<number> {
  const page = await directClient().send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return page.Uploads?.length ?? 0;
}

async function keysUnder(prefix: string): Promise<string[]> {
  const page = await directClient().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key as string).sort();
}

async function objectBytes(key: string): Promise<Buffer> {
  const object = await directClient().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from((await object.Body?.transformToByteArray()) ?? new Uint8Array());
}

async function objectSha256(key: string): Promise<string> {
  return createHash('sha256')
    .update(await objectBytes(key))
    .digest('hex');
}

describe('checkpoints straight to a bucket', () => {
  it('saves in parts hashed as they go up, lists only what is complete, and loads back through the cache', async () => {
    const checkpoints = await open();
    expect(checkpoints.conditionalWrites).toBe(true);
    const saved = await checkpoints.save({ state: state(12), step: 3, epoch: 1, metrics: { loss: 0.5 } });
    expect(saved.size).toBeGreaterThan(12 << 20);
    expect(saved.sha256).toBe(await objectSha256(saved.key));
    expect(saved.key).toBe(`runs/${checkpoints.prefix.split('/')[1]}/${saved.id}/checkpoint.safetensors`);
    expect(await uploadsUnder(checkpoints.prefix)).toBe(0);
    expect(await keysUnder(checkpoints.prefix)).toEqual([saved.key, `${checkpoints.prefix}index.json`].sort());

    const first = await checkpoints.load();
    for (const [name, t] of Object.entries(state(12))) expect(tensorsEqual(first.state[name] as Tensor, t)).toBe(true);
    expect(createHash('sha256').update(readFileSync(first.path)).digest('hex')).toBe(saved.sha256);
    proxy.reset();
    const again = await checkpoints.load(saved.id);
    expect(again.path).toBe(first.path);
    expect(proxy.requests.GET).toBe(1); // the index only: the bytes came from the cache
    expect((await checkpoints.list()).map((r) => r.metrics)).toEqual([{ loss: 0.5 }]);
  });

  it('a dropped connection and a 500 in the middle of an upload are retried, and the checkpoint is whole', async () => {
    const checkpoints = await open();
    proxy.reset();
    proxy.cutUploadNext(/^PUT \S+partNumber=2/, 1 << 20);
    proxy.failNext(/^PUT \S+partNumber=3/);
    const saved = await checkpoints.save({ state: state(16, 7), step: 1 });
    expect(proxy.faultsServed).toBe(2);
    expect(saved.sha256).toBe(await objectSha256(saved.key));
    const loaded = await checkpoints.load();
    for (const [name, t] of Object.entries(state(16, 7)))
      expect(tensorsEqual(loaded.state[name] as Tensor, t)).toBe(true);
    expect(await uploadsUnder(checkpoints.prefix)).toBe(0);
  });

  it('an upload that keeps failing leaves nothing: no record, no object, no multipart upload', async () => {
    const checkpoints = await open({ retries: 1 });
    proxy.reset();
    proxy.failNext(/^PUT \S+partNumber=2/, 2);
    await expect(checkpoints.save({ state: state(12), step: 1 })).rejects.toThrow(NetworkError);
    expect(proxy.faultsServed).toBe(2);
    expect(await checkpoints.list()).toEqual([]);
    expect(await uploadsUnder(checkpoints.prefix)).toBe(0);
    expect(await keysUnder(checkpoints.prefix)).toEqual([`${checkpoints.prefix}index.json`]);
  });

  it('a process killed mid-upload leaves no checkpoint listed, and the next opening aborts its upload', async () => {
    const location = `s3://${bucket}/killed`;
    const experiment = `exp-${++experiments}`;
    const proc = spawn(process.execPath, [child, proxy.endpoint, location, experiment, fresh('cache'), '30'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      proc.stdout.on('data', (d: Buffer) => {
        if (String(d).includes('part')) resolve();
      });
      proc.on('exit', (code) => reject(new Error(`the child exited (${code}) before its first part`)));
    });
    proc.kill('SIGKILL');
    await new Promise((resolve) => proc.on('exit', resolve));
    const prefix = `killed/${experiment}/`;
    expect(await uploadsUnder(prefix)).toBe(1); // left behind, billed
    const reopened = await BucketCheckpoints.open({
      location,
      experiment,
      storage: safetensors,
      client: proxiedClient(),
      cacheDir: fresh('cache'),
    });
    expect(await reopened.list()).toEqual([]);
    expect(await uploadsUnder(prefix)).toBe(0);
    expect(await keysUnder(prefix)).toEqual([`${prefix}index.json`]);
  });

  it('retention and delete remove objects remotely', async () => {
    const checkpoints = await open({ keepLast: 2 });
    for (let step = 1; step <= 4; step++) await checkpoints.save({ state: state(1, step), step });
    const records = await checkpoints.list();
    expect(records.map((r) => r.step).sort()).toEqual([3, 4]);
    expect(await keysUnder(checkpoints.prefix)).toEqual(
      [...records.map((r) => r.key), `${checkpoints.prefix}index.json`].sort(),
    );
    await checkpoints.delete((records[0] as { id: string }).id);
    expect(await keysUnder(checkpoints.prefix)).toHaveLength(2);
    await expect(checkpoints.load('nothing-such')).rejects.toThrow(/no checkpoint/);
    await expect(checkpoints.save({ state: state(1), step: 5, metrics: { loss: Number.NaN } })).rejects.toThrow(
      /must be a finite number/,
    );
    await expect(checkpoints.save({ state: state(1), step: -1 })).rejects.toThrow(/step must be/);
    expect(await checkpoints.list()).toHaveLength(1);
  });

  it('runs hooks: beforeSave may add metadata or veto (nothing is uploaded), and retention tells before and after', async () => {
    const events: string[] = [];
    const hooks = new HookManager<CheckpointEvents>();
    hooks.register(
      'watch',
      {
        handle: (event, context) => {
          events.push(`${event}:${'reason' in context ? context.reason : ''}`);
          if (event === 'beforeSave') {
            const before = context as { step?: number; metadata: Record<string, string> };
            if (before.step === 99) return { veto: 'not this one' };
            before.metadata.run = 'hooked';
          }
          return undefined;
        },
      },
      ['beforeSave', 'afterSave', 'beforeLoad', 'afterLoad', 'beforeDelete', 'afterDelete'],
    );
    const checkpoints = await open({ hooks, keepLast: 1 });
    await checkpoints.save({ state: state(1), step: 1 });
    await checkpoints.save({ state: state(1), step: 2 });
    const loaded = await checkpoints.load();
    expect(loaded.metadata.run).toBe('hooked');
    await expect(checkpoints.save({ state: state(1), step: 99 })).rejects.toThrow(VetoedError);
    expect((await checkpoints.list()).map((r) => r.step)).toEqual([2]);
    expect(await keysUnder(checkpoints.prefix)).toHaveLength(2); // step 2 and the index
    expect(events).toEqual([
      'beforeSave:',
      'afterSave:',
      'beforeSave:',
      'afterSave:',
      'beforeDelete:retention',
      'afterDelete:retention',
      'beforeLoad:',
      'afterLoad:',
      'beforeSave:',
    ]);
  });

  it('tells a tracker (SQLite) of every checkpoint committed and deleted; a tracker that fails only warns', async () => {
    const database = await connect(`${fresh('tracking')}.db`);
    const run = await TrackedRun.start(database, { name: 'bucket-run' });
    const checkpoints = await open({ tracker: run, keepLast: 1 });
    await checkpoints.save({ state: state(1), step: 1, metrics: { loss: 0.5 } });
    const kept = await checkpoints.save({ state: state(1), step: 2, metrics: { loss: 0.25 } });
    await database.flush();
    const tracked = await database.checkpoints(run.id);
    expect(tracked.map((c) => [c.id, c.step, c.sha256, c.path])).toEqual([
      [kept.id, 2, kept.sha256, `s3://${bucket}/${kept.key}`],
    ]);
    expect((await database.metricHistory(run.id, 'loss')).map((p) => p.value)).toEqual([0.5, 0.25]);
    await database.close();

    const warnings: string[] = [];
    const broken: Tracker = {
      name: 'broken',
      recordCheckpoint: () => {
        throw new Error('the tracking server is down');
      },
    };
    const failing = await open({ tracker: broken, warn: (m) => warnings.push(m) });
    await failing.save({ state: state(1), step: 1 });
    expect(warnings.join()).toMatch(/broken could not record a checkpoint: the tracking server is down/);
    expect(await failing.list()).toHaveLength(1);
  });

  it('keeps the best checkpoint through retention, and loads it by name', async () => {
    const checkpoints = await open({ keepLast: 1, best: { monitor: 'loss', mode: 'min' } });
    for (const [step, loss] of [
      [1, 0.5],
      [2, 0.2],
      [3, 0.4],
    ] as const)
      await checkpoints.save({ state: state(1, step), step, metrics: { loss } });
    expect((await checkpoints.list()).map((r) => r.step).sort()).toEqual([2, 3]);
    const best = await checkpoints.load('best');
    expect(best.record.step).toBe(2);
    expect(tensorsEqual(best.state['layers.0.weight'] as Tensor, state(1, 2)['layers.0.weight'] as Tensor)).toBe(true);
    await expect(open({ keepLast: 0 })).rejects.toThrow(/keepLast must be/);
    await expect(open({ best: { monitor: 'loss', mode: 'up' as 'min' } })).rejects.toThrow(/best must be/);
  });

  it('keeps protected checkpoints through retention; tags and descriptions are kept in the index and reach the tracker', async () => {
    const database = await connect(`${fresh('tracking')}.db`);
    const run = await TrackedRun.start(database, { name: 'labels' });
    const checkpoints = await open({ keepLast: 1, tracker: run });
    const first = await checkpoints.save({ state: state(1, 1), step: 1, tags: ['warmup', 'warmup'], protect: true });
    expect(first).toMatchObject({ tags: ['warmup'], protected: true });
    const second = await checkpoints.save({ state: state(1, 2), step: 2 });
    await checkpoints.tag(second.id, 'candidate', 'eval');
    await checkpoints.untag(second.id, 'eval');
    await checkpoints.describe('latest', 'before the learning-rate drop');
    await checkpoints.protect(second.id);
    await checkpoints.save({ state: state(1, 3), step: 3 });
    await checkpoints.save({ state: state(1, 4), step: 4 });
    // keepLast counts the unprotected ones only: steps 1 and 2 are protected, 4 is the newest.
    const kept = await checkpoints.list();
    expect(kept.map((r) => r.step).sort()).toEqual([1, 2, 4]);
    expect(kept.find((r) => r.id === second.id)).toMatchObject({
      tags: ['candidate'],
      protected: true,
      description: 'before the learning-rate drop',
    });
    await expect(checkpoints.delete(first.id)).rejects.toThrow(/is protected/);
    await checkpoints.unprotect(first.id);
    await checkpoints.delete(first.id);
    await checkpoints.delete(second.id, { force: true });
    expect((await checkpoints.list()).map((r) => r.step)).toEqual([4]);
    await expect(checkpoints.tag('latest', '')).rejects.toThrow(/tags must be/);
    await expect(checkpoints.save({ state: state(1), step: 5, tags: [42 as unknown as string] })).rejects.toThrow(
      /tags must be/,
    );
    await expect(checkpoints.describe('latest', 'x'.repeat(5000))).rejects.toThrow(/description/);
    await database.flush();
    const tracked = await database.checkpoints(run.id);
    expect(tracked.map((c) => c.step)).toEqual([4]);
    await database.close();
  });

  it('verify reads every object back and names the ones that are corrupted or gone', async () => {
    const checkpoints = await open();
    const whole = await checkpoints.save({ state: state(1, 1), step: 1 });
    const damaged = await checkpoints.save({ state: state(1, 2), step: 2 });
    const lost = await checkpoints.save({ state: state(1, 3), step: 3 });
    await checkpoints.load(damaged.id); // a good copy in the cache must not hide the bucket's bad one
    const bytes = await objectBytes(damaged.key);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    await directClient().send(new PutObjectCommand({ Bucket: bucket, Key: damaged.key, Body: bytes }));
    await directClient().send(new DeleteObjectCommand({ Bucket: bucket, Key: lost.key }));
    const results = await checkpoints.verify();
    expect(results.map((r) => [r.id, r.status])).toEqual([
      [whole.id, 'ok'],
      [damaged.id, 'corrupted'],
      [lost.id, 'missing'],
    ]);
    const corrupted = results[1];
    expect(corrupted?.expected).toBe(damaged.sha256);
    expect(corrupted?.actual).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(corrupted?.problem).toMatch(/does not match its SHA-256/);
    await expect(checkpoints.load(damaged.id)).rejects.toThrow(IntegrityError);
    expect(await checkpoints.verify(whole.id)).toEqual([results[0]]);
  });

  it('reads an index written before tags and protection, and refuses malformed labels in one', async () => {
    const checkpoints = await open();
    const saved = await checkpoints.save({ state: state(1), step: 1 });
    const key = `${checkpoints.prefix}index.json`;
    const index = JSON.parse((await objectBytes(key)).toString());
    const write = (body: unknown) =>
      directClient().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(body) }));
    const { tags, protected: wasProtected, ...older } = index.records[0];
    await write({ ...index, records: [older] });
    expect(await checkpoints.list()).toEqual([{ ...saved, tags: [], protected: false }]);
    await write({ ...index, records: [{ ...older, tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }] });
    await expect(checkpoints.list()).rejects.toThrow(/malformed tags/);
    await write({ ...index, records: [{ ...older, tags: ['x'.repeat(201)] }] });
    await expect(checkpoints.list()).rejects.toThrow(FormatError);
    await write({ ...index, records: [{ ...older, protected: 'yes' }] });
    await expect(checkpoints.list()).rejects.toThrow(FormatError);
    // A "__proto__" key in JSON is an own key: it must neither travel on nor change a prototype.
    const hostile = JSON.stringify({ ...index, records: [{ ...older, extra: 'x' }] }).replace(
      '"extra"',
      '"__proto__":{"polluted":true},"extra"',
    );
    await directClient().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: hostile }));
    const [read] = await checkpoints.list();
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    expect(read && Object.keys(read).sort()).toEqual(Object.keys({ ...saved }).sort());
    expect([tags, wasProtected]).toEqual([[], false]);
  });

  it('a background save holds the values at the call, though the caller overwrites its tensors at once; a failed one is told by flush', async () => {
    const checkpoints = await open();
    const live = state(8, 1);
    const first = checkpoints.saveInBackground({ state: live, step: 1 });
    const second = checkpoints.saveInBackground({ state: live, step: 2 }, { snapshot: 'copy' });
    for (const tensor of Object.values(live)) new Float32Array(tensor.data.buffer).fill(-7); // the next training step
    await checkpoints.flush();
    const [one, two] = await Promise.all([first.done, second.done]);
    expect([one.status, two.status]).toEqual(['saved', 'saved']);
    expect([one, two].map((s) => s.status === 'saved' && s.record.step)).toEqual([1, 2]);
    for (const saved of [one, two]) {
      const loaded = await checkpoints.load(saved.status === 'saved' ? saved.record.id : 'none');
      expect(tensorsEqual(loaded.state['layers.3.weight'] as Tensor, state(8, 1)['layers.3.weight'] as Tensor)).toBe(
        true,
      );
    }

    proxy.reset();
    proxy.failNext(/^PUT \S+partNumber=/, 1000, 500);
    const failing = checkpoints.saveInBackground({ state: state(8), step: 3 });
    expect(() => checkpoints.saveInBackground({ state: state(1), step: -1 })).toThrow(/step must be/);
    const ended = await failing.done;
    proxy.reset();
    expect(ended.status).toBe('failed');
    await expect(checkpoints.flush()).rejects.toThrow(NetworkError);
    await checkpoints.flush(); // told once
    expect((await checkpoints.list()).map((r) => r.step).sort()).toEqual([1, 2]);
    expect(await uploadsUnder(checkpoints.prefix)).toBe(0);
  });

  it('two writers saving at once keep both their records (conditional index writes)', async () => {
    const first = await open();
    const second = await BucketCheckpoints.open({
      location: `s3://${bucket}/runs`,
      experiment: first.prefix.split('/')[1] as string,
      storage: safetensors,
      client: proxiedClient(),
      cacheDir: fresh('cache'),
    });
    await Promise.all(
      [1, 2, 3].flatMap((step) => [
        first.save({ state: state(1), step }),
        second.save({ state: state(1), step: step + 10 }),
      ]),
    );
    expect((await first.list()).map((r) => r.step).sort((a, b) => a - b)).toEqual([1, 2, 3, 11, 12, 13]);
  });

  it('a server that ignores conditional writes is found out at open: a warning, or a refusal when they are required', async () => {
    proxy.stripConditions = true;
    try {
      const warnings: string[] = [];
      const checkpoints = await open({ warn: (m) => warnings.push(m) });
      expect(checkpoints.conditionalWrites).toBe(false);
      expect(warnings.join()).toMatch(/ignores conditional writes/);
      await checkpoints.save({ state: state(1), step: 1 });
      await expect(open({ conditionalWrites: 'required' })).rejects.toThrow(UnsupportedError);
    } finally {
      proxy.stripConditions = false;
    }
  });

  it('a server that cannot list multipart uploads (501) gets a warning at recovery, not a failure, and no retries', async () => {
    proxy.reset();
    proxy.failNext(/^GET \S+[?&]uploads/, 3, 501);
    const warnings: string[] = [];
    await open({ warn: (m) => warnings.push(m) });
    expect(warnings.join()).toMatch(/cannot list multipart uploads/);
    expect(proxy.faultsServed).toBe(1);
    proxy.reset();
  });

  it('an index that names keys outside its experiment is refused, and nothing outside is touched', async () => {
    const experiment = `exp-${++experiments}`;
    const outside = 'runs/other/precious.bin';
    await directClient().send(new PutObjectCommand({ Bucket: bucket, Key: outside, Body: 'keep me' }));
    const hostile = {
      version: 1,
      records: [],
      pending: [],
      deleting: ['runs/other/precious.bin'],
    };
    await directClient().send(
      new PutObjectCommand({ Bucket: bucket, Key: `runs/${experiment}/index.json`, Body: JSON.stringify(hostile) }),
    );
    await expect(
      BucketCheckpoints.open({
        location: `s3://${bucket}/runs`,
        experiment,
        storage: safetensors,
        client: proxiedClient(),
        cacheDir: fresh('cache'),
      }),
    ).rejects.toThrow(FormatError);
    expect(await keysUnder('runs/other/')).toEqual([outside]);
    await expect(open({ location: 's3://Not_A_Bucket/x' })).rejects.toThrow(/not a bucket location/);
    await expect(open({ location: `s3://${bucket}/a/../b` })).rejects.toThrow(/cannot hold/);
  });
});
