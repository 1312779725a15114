// Fuzz targets of what the bucket store and the cache read back (see
// docs/formats-and-safety.md, "Fuzzing"): the bucket's index.json and the
// cache's per-file records, mutated and generated. Each is taken with only
// its known fields or refused (a typed error for the index; "no record" for
// the cache, which then downloads again).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '@ckpt/core';
import { fc, fuzz, hostileJsonVariants, mutatedBytes } from '@ckpt/testkit/fuzz';
import { describe, expect, it } from 'vitest';
import { checkIndex } from '../src/bucket/index-object.js';
import { Cache, parseCacheRecord } from '../src/cache.js';

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const HASH = 'ab'.repeat(32);
const INDEX = JSON.stringify({
  version: 1,
  records: [
    {
      id: 'step-100',
      key: 'team/run/step-100/model.safetensors',
      size: 1024,
      sha256: HASH,
      step: 100,
      epoch: 1,
      created: '2026-12-01T00:00:00.000Z',
      metrics: { loss: 0.5 },
      tags: ['good'],
      protected: true,
      description: 'first',
    },
  ],
  pending: [
    {
      id: 'step-200',
      key: 'team/run/step-200/model.safetensors',
      host: 'h',
      pid: 7,
      pidStart: '1',
      started: 1,
      uploadId: 'u',
    },
  ],
  deleting: ['team/run/step-50/model.safetensors'],
});
const RECORD = JSON.stringify({
  source: 's3://b/k',
  size: 3,
  sha256: HASH,
  etag: '"e"',
  versionId: 'v',
  downloadedAt: '2026-12-01T00:00:00.000Z',
});

const RECORD_FIELDS = [
  'id',
  'key',
  'size',
  'sha256',
  'step',
  'epoch',
  'created',
  'metrics',
  'tags',
  'protected',
  'description',
];
const UPLOAD_FIELDS = ['id', 'key', 'uploadId', 'host', 'pid', 'pidStart', 'started'];
const onlyKnown = (value: object, known: string[]) => Object.keys(value).every((k) => known.includes(k));

const texts = (seed: string) =>
  fc.oneof(
    { arbitrary: mutatedBytes([encode(seed)], { focus: seed.length, maxEdits: 4 }).map(decode), weight: 4 },
    { arbitrary: hostileJsonVariants(seed), weight: 2 },
    { arbitrary: fc.json({ maxDepth: 4 }), weight: 1 },
  );

describe('fuzzing what the bucket store reads back', () => {
  it('a mutated index.json is taken with only known fields, inside the prefix, or refused with a typed error', async () => {
    const summary = await fuzz(
      'bucket/index',
      texts(INDEX),
      (text) => {
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          throw new FormatError('not JSON'); // as IndexObject.read refuses it
        }
        const index = checkIndex(value, 'team/run/', 'index.json');
        for (const record of index.records) {
          expect(onlyKnown(record, RECORD_FIELDS)).toBe(true);
          expect(record.key.startsWith(`team/run/${record.id}/`)).toBe(true);
          expect(Object.getPrototypeOf(record.metrics)).toBe(null);
        }
        for (const upload of index.pending) expect(onlyKnown(upload, UPLOAD_FIELDS)).toBe(true);
        for (const key of index.deleting) expect(key.startsWith('team/run/') && !key.includes('..')).toBe(true);
      },
      { runs: 2000 },
    );
    expect(summary.accepted).toBeGreaterThan(0);
  });

  it('a mutated cache record is taken with only known fields, or counts as none', async () => {
    const summary = await fuzz(
      'cache/record',
      texts(RECORD),
      (text) => {
        const record = parseCacheRecord(text);
        if (!record) throw new FormatError('no record: the cache downloads again'); // tallied as refused
        expect(onlyKnown(record, ['source', 'size', 'sha256', 'etag', 'versionId', 'downloadedAt'])).toBe(true);
        expect(Number.isSafeInteger(record.size) && record.size >= 0).toBe(true);
      },
      { runs: 2000 },
    );
    expect(summary.accepted).toBeGreaterThan(0);
    expect(summary.refused).toBeGreaterThan(0);
  });
});

describe('what fuzzing found', () => {
  it('a pending upload keeps only its known fields, and overlong labels are refused', () => {
    const index = JSON.parse(INDEX);
    index.pending[0].extra = 'travels on';
    Object.defineProperty(index.pending[0], '__proto__', { value: { polluted: true }, enumerable: true });
    const [upload] = checkIndex(index, 'team/run/', 'index.json').pending;
    expect(Object.keys(upload as object).sort()).toEqual([...UPLOAD_FIELDS].sort());
    const long = JSON.parse(INDEX);
    long.pending[0].host = 'h'.repeat(10_000);
    expect(() => checkIndex(long, 'team/run/', 'index.json')).toThrow(FormatError);
    const created = JSON.parse(INDEX);
    created.records[0].created = 'x'.repeat(10_000);
    expect(() => checkIndex(created, 'team/run/', 'index.json')).toThrow(FormatError);
  });

  it('a cache record keeps only its known fields; an oversized or negative one counts as none', async () => {
    const record = parseCacheRecord(JSON.stringify({ ...JSON.parse(RECORD), extra: 1, __proto__x: 2 }));
    expect(Object.keys(record ?? {}).sort()).toEqual(['downloadedAt', 'etag', 'sha256', 'size', 'source', 'versionId']);
    expect(parseCacheRecord(JSON.stringify({ ...JSON.parse(RECORD), size: -1 }))).toBeUndefined();
    expect(parseCacheRecord(JSON.stringify({ ...JSON.parse(RECORD), source: 's'.repeat(10_000) }))).toBeUndefined();
    const cache = new Cache(mkdtempSync(join(tmpdir(), 'ckpt-cache-record-')));
    await cache.remember('model.bin', JSON.parse(RECORD));
    expect(await cache.record('model.bin')).toMatchObject({ size: 3 });
    const meta = cache.metaPathOf('model.bin');
    writeFileSync(meta, `${RECORD}${' '.repeat(128 * 1024)}`); // valid JSON, but no record is that large
    expect(await cache.record('model.bin')).toBeUndefined();
  });
});
