/**
 * The experiment's index in the bucket, `<experiment>/index.json`: every
 * committed record, the uploads in flight and the deletions under way. It
 * is changed only by read, change, conditional write: `If-Match` on the
 * ETag read (`If-None-Match: *` to create it), so two writers never lose
 * each other's change. A server without conditional writes gets plain
 * writes, and the last writer wins (see `conditionalWrites`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, type GetObjectCommandOutput, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ConflictError, FormatError, shown } from '@ckpt/core';
import { status, type TransferOptions, withRetries } from '../transfer.js';

export const INDEX_NAME = 'index.json';
const INDEX_VERSION = 1;
/** The largest index read: a record is ~300 bytes, so well over 100,000 checkpoints. */
const MAX_INDEX_BYTES = 64 << 20;
const MAX_ATTEMPTS = 30;

export interface BucketRecord {
  id: string;
  /** The object's key, under the experiment's prefix. */
  key: string;
  size: number;
  sha256: string;
  step: number;
  epoch: number;
  metrics: Record<string, number>;
  created: string;
  tags: string[];
  /** Retention and delete pass it by (delete with `force` removes it). */
  protected: boolean;
  description?: string;
}

/** An upload in flight: recovery aborts it once its writer is gone. */
export interface PendingUpload {
  id: string;
  key: string;
  uploadId?: string;
  host: string;
  pid: number;
  /** The process's start time, so that a reused pid is not taken for the writer. */
  pidStart: string;
  started: number;
}

export interface IndexData {
  version: number;
  records: BucketRecord[];
  pending: PendingUpload[];
  /** Keys whose records are gone and whose objects are being deleted. */
  deleting: string[];
}

const emptyIndex = (): IndexData => ({ version: INDEX_VERSION, records: [], pending: [], deleting: [] });

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
/** Tags and descriptions are labels: bounded, so that an index cannot carry megabytes in one of them. */
export const MAX_TAGS = 64;
export const MAX_LABEL = 200;
export const MAX_DESCRIPTION = 4000;
export const isTag = (v: unknown): v is string => typeof v === 'string' && v !== '' && v.length <= MAX_LABEL;
/** Dates, host names, process start times: short strings. */
const isShortText = (v: unknown, limit = 256): v is string => typeof v === 'string' && v.length <= limit;

/** Checks every field of an index read from the bucket: it is hostile like any file. */
export function checkIndex(value: unknown, prefix: string, where: string): IndexData {
  const bad = (what: string) => new FormatError(`the bucket index is malformed: ${what}`, { path: where });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('not an object');
  const v = value as Record<string, unknown>;
  if (v.version !== INDEX_VERSION) throw bad(`version ${shown(v.version)}`);
  const list = (name: string) => {
    const items = v[name];
    if (!Array.isArray(items)) throw bad(`${name} is not a list`);
    return items as unknown[];
  };
  const ownKey = (key: unknown, id: unknown) =>
    typeof key === 'string' &&
    typeof id === 'string' &&
    ID.test(id) &&
    key.startsWith(`${prefix}${id}/`) &&
    !key.includes('..');
  const records = list('records').map((r) => {
    const record = r as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || !ownKey(record.key, record.id))
      throw bad('a record names a key outside its folder');
    if (!isCount(record.size) || typeof record.sha256 !== 'string' || !HEX64.test(record.sha256)) throw bad('a record');
    if (!isCount(record.step) || !isCount(record.epoch) || !isShortText(record.created)) throw bad('a record');
    const metrics: Record<string, number> = Object.create(null);
    if (typeof record.metrics !== 'object' || record.metrics === null) throw bad('a record has no metrics');
    for (const [name, number] of Object.entries(record.metrics)) {
      if (typeof number !== 'number') throw bad('a metric is not a number');
      metrics[name] = number;
    }
    // Indexes written before tags and protection lack them.
    const tags = record.tags ?? [];
    if (!Array.isArray(tags) || tags.length > MAX_TAGS || !tags.every(isTag)) throw bad('a record has malformed tags');
    if (record.protected !== undefined && typeof record.protected !== 'boolean') throw bad('a record');
    const description = record.description;
    if (description !== undefined && (typeof description !== 'string' || description.length > MAX_DESCRIPTION))
      throw bad('a record has a malformed description');
    // Only the known fields are kept: nothing else in a hostile record travels on.
    return {
      id: record.id as string,
      key: record.key as string,
      size: record.size,
      sha256: record.sha256,
      step: record.step,
      epoch: record.epoch,
      created: record.created,
      metrics,
      tags: [...tags],
      protected: record.protected === true,
      ...(description === undefined ? {} : { description }),
    };
  });
  const pending = list('pending').map((p) => {
    const upload = p as Record<string, unknown>;
    if (typeof p !== 'object' || p === null || !ownKey(upload.key, upload.id))
      throw bad('an upload names a key outside its folder');
    if (!isShortText(upload.host) || !isCount(upload.pid) || !isCount(upload.started)) throw bad('an upload');
    if (!isShortText(upload.pidStart)) throw bad('an upload');
    if (upload.uploadId !== undefined && !isShortText(upload.uploadId, 1024)) throw bad('an upload id');
    // As for records: only the known fields travel on.
    return {
      id: upload.id as string,
      key: upload.key as string,
      host: upload.host,
      pid: upload.pid,
      pidStart: upload.pidStart,
      started: upload.started,
      ...(upload.uploadId === undefined ? {} : { uploadId: upload.uploadId }),
    };
  });
  const deleting = list('deleting').map((key) => {
    if (typeof key !== 'string' || !key.startsWith(prefix) || key.includes('..'))
      throw bad('a deletion outside the experiment');
    return key;
  });
  return { version: INDEX_VERSION, records, pending, deleting };
}

export class IndexObject {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    /** The experiment's prefix, ending with '/'. */
    readonly prefix: string,
    readonly conditional: boolean,
    readonly transfer: TransferOptions,
  ) {}

  get key(): string {
    return `${this.prefix}${INDEX_NAME}`;
  }

  /** The index and its ETag; an empty index and no ETag when there is none yet. */
  async read(): Promise<{ index: IndexData; etag: string | undefined }> {
    const where = `s3://${this.bucket}/${this.key}`;
    return withRetries(`GET ${where}`, this.transfer, async () => {
      let response: GetObjectCommandOutput;
      try {
        response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key }));
      } catch (error) {
        if (status(error) === 404) return { index: emptyIndex(), etag: undefined };
        throw error;
      }
      const { ContentLength, ETag } = response;
      if ((ContentLength ?? 0) > MAX_INDEX_BYTES)
        throw new FormatError(`the bucket index is ${ContentLength} bytes: too large`, { path: where });
      const bytes = (await response.Body?.transformToByteArray()) ?? new Uint8Array(0);
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
      } catch {
        throw new FormatError('the bucket index is not JSON', { path: where });
      }
      return { index: checkIndex(parsed, this.prefix, where), etag: ETag };
    });
  }

  /**
   * Applies `change` to the index and writes it back, if nobody wrote in
   * between; else reads again and reapplies. `change` must be idempotent: a
   * write whose answer was lost may have landed.
   */
  async update(change: (index: IndexData) => void): Promise<IndexData> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { index, etag } = await this.read();
      change(index);
      const conditions = !this.conditional ? {} : etag ? { IfMatch: etag } : { IfNoneMatch: '*' };
      try {
        await withRetries(`PUT s3://${this.bucket}/${this.key}`, this.transfer, () =>
          this.client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: this.key,
              Body: Buffer.from(JSON.stringify(index)),
              ContentType: 'application/json',
              ...conditions,
            }),
          ),
        );
        return index;
      } catch (error) {
        // 412: another writer changed it first; 409: a conditional write raced another.
        if (status(error) !== 412 && status(error) !== 409) throw error;
        await sleep(Math.min(1000, 20 * 2 ** attempt) * Math.random());
      }
    }
    throw new ConflictError(
      `the bucket index s3://${this.bucket}/${this.key} kept changing under ${MAX_ATTEMPTS} attempts`,
    );
  }
}
