/**
 * Downloading one object into a file: parallel ranged GETs pinned to one
 * version of the object, each part retried with backoff and resumed from
 * the byte where its connection dropped, a watchdog that aborts a stalled
 * transfer, and the digests computed in order as parts complete.
 */
import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CkptError, ConflictError, IntegrityError, NotFoundError } from '@ckpt/core';
import { type ProgressCallback, Sha256 } from '@ckpt/native';

/** What HEAD says of an object, and the digests we can check it against. */
export interface ObjectInfo {
  size: number;
  etag: string | undefined;
  versionId: string | undefined;
  /** From our upload's metadata (`x-amz-meta-sha256`). */
  sha256: string | undefined;
  /** B2's SHA-1, where the object carries one (`large_file_sha1` metadata or `x-bz-content-sha1`). */
  sha1: string | undefined;
  /** A single-part upload's ETag is its MD5. */
  md5: string | undefined;
}

export interface TransferOptions {
  /** Bytes per ranged GET (default 8 MiB). */
  partSize?: number;
  /** Ranged GETs at once (default 4). */
  concurrency?: number;
  /** Attempts per request after the first (default 5). */
  retries?: number;
  /** First backoff delay; doubled each attempt, with jitter (default 200 ms). */
  retryDelayMs?: number;
  /** Abort a request that receives nothing for this long, then retry it (default 30 s). */
  stallTimeoutMs?: number;
  onProgress?: ProgressCallback;
  /** Flush the file before returning (default true). */
  fsync?: boolean;
}

/** A transfer that failed after its retries; `cause` holds the last error. */
export class NetworkError extends CkptError {
  override name = 'NetworkError';
  constructor(message: string, details: { path?: string; cause?: unknown } = {}) {
    super('CKPT_NETWORK', message, details);
  }
}

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

function status(error: unknown): number | undefined {
  return (error as SdkError)?.$metadata?.httpStatusCode;
}

/** Worth another attempt: network failures, stalls, throttling and server errors. */
export function retryable(error: unknown): boolean {
  const code = status(error);
  if (code !== undefined) return code >= 500 || code === 429 || code === 408;
  return !(error instanceof CkptError) || error.code === 'CKPT_NETWORK';
}

export async function withRetries<T>(
  what: string,
  options: TransferOptions,
  attempt: (attemptNumber: number) => Promise<T>,
): Promise<T> {
  const retries = options.retries ?? 5;
  const base = options.retryDelayMs ?? 200;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (!retryable(error) || n >= retries) {
        if (retryable(error)) {
          throw new NetworkError(`${what} failed after ${n + 1} attempts: ${(error as Error)?.message ?? error}`, {
            cause: error,
          });
        }
        throw error;
      }
      await sleep(base * 2 ** n * (0.5 + Math.random()));
    }
  }
}

function hex(value: string | undefined): string | undefined {
  return value && /^[0-9a-f]+$/i.test(value) ? value.toLowerCase() : undefined;
}

/** HEAD of `key`, or undefined when there is no such object. */
export async function headObject(
  client: S3Client,
  bucket: string,
  key: string,
  options: TransferOptions = {},
): Promise<ObjectInfo | undefined> {
  return withRetries(`HEAD s3://${bucket}/${key}`, options, async () => {
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      const etag = head.ETag?.replace(/"/g, '');
      const metadata = head.Metadata ?? {};
      return {
        size: Number(head.ContentLength ?? 0),
        etag,
        versionId: head.VersionId && head.VersionId !== 'null' ? head.VersionId : undefined,
        sha256: hex(metadata.sha256),
        sha1: hex(metadata.large_file_sha1 ?? metadata['x-bz-content-sha1'] ?? metadata.sha1),
        md5: etag && /^[0-9a-f]{32}$/i.test(etag) ? etag.toLowerCase() : undefined,
      };
    } catch (error) {
      if (status(error) === 404 || (error as SdkError)?.name === 'NotFound') return undefined;
      throw error;
    }
  });
}

/** Hashes parts in order as they complete, holding early ones until their turn. */
class OrderedDigests {
  readonly #sha256 = new Sha256();
  readonly #extra: Array<{ name: 'sha1' | 'md5'; hash: Hash }>;
  readonly #waiting = new Map<number, Buffer>();
  next = 0;

  constructor(info: ObjectInfo) {
    // SHA-256 always (it is what the cache records); SHA-1 or MD5 only to check the object against.
    this.#extra = info.sha256
      ? []
      : info.sha1
        ? [{ name: 'sha1', hash: createHash('sha1') }]
        : info.md5
          ? [{ name: 'md5', hash: createHash('md5') }]
          : [];
  }

  add(index: number, bytes: Buffer): void {
    this.#waiting.set(index, bytes);
    for (let part = this.#waiting.get(this.next); part; part = this.#waiting.get(this.next)) {
      this.#sha256.update(part);
      for (const { hash } of this.#extra) hash.update(part);
      this.#waiting.delete(this.next);
      this.next++;
    }
  }

  finish(): { sha256: string; sha1?: string; md5?: string } {
    const out: { sha256: string; sha1?: string; md5?: string } = { sha256: this.#sha256.digest() };
    for (const { name, hash } of this.#extra) out[name] = hash.digest('hex');
    return out;
  }
}

/**
 * Downloads `key` (the version `info` describes) into `path`, which must
 * not exist; returns its SHA-256 after checking it against what `info`
 * carries (our SHA-256, else B2's SHA-1, else a single-part ETag's MD5).
 */
export async function downloadObject(
  client: S3Client,
  bucket: string,
  key: string,
  info: ObjectInfo,
  path: string,
  options: TransferOptions = {},
): Promise<string> {
  const partSize = options.partSize ?? 8 << 20;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const parts = Math.ceil(info.size / partSize);
  const file = await open(path, 'wx');
  try {
    await file.truncate(info.size);
    const digests = new OrderedDigests(info);
    const progress = throttledProgress(info.size, options.onProgress);
    let nextPart = 0;
    // Workers take parts in order, at most two windows ahead of the hashing, to bound memory.
    const window = concurrency * 2;
    const worker = async () => {
      for (;;) {
        while (nextPart - digests.next >= window) await sleep(5);
        const index = nextPart++;
        if (index >= parts) return;
        const start = index * partSize;
        const length = Math.min(partSize, info.size - start);
        const bytes = await fetchPart(client, bucket, key, info, start, length, options, progress.add);
        await writeAt(file, bytes, start);
        digests.add(index, bytes);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(parts, 1)) }, worker));
    progress.done();
    if (options.fsync ?? true) await file.sync();
    const actual = digests.finish();
    check(info, actual, `s3://${bucket}/${key}`);
    return actual.sha256;
  } finally {
    await file.close();
  }
}

async function writeAt(file: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

function check(info: ObjectInfo, actual: { sha256: string; sha1?: string; md5?: string }, where: string): void {
  const [name, expected, found] = info.sha256
    ? ['SHA-256', info.sha256, actual.sha256]
    : info.sha1
      ? ['SHA-1', info.sha1, actual.sha1]
      : info.md5
        ? ['MD5', info.md5, actual.md5]
        : [undefined, undefined, undefined];
  if (name && expected !== found) {
    throw new IntegrityError(
      `${where} does not match its ${name}: the object is corrupted, or changed as it was read`,
      {
        path: where,
        expected,
        found,
      },
    );
  }
}

/** One part, into memory; a dropped or stalled connection resumes from the last byte received. */
async function fetchPart(
  client: S3Client,
  bucket: string,
  key: string,
  info: ObjectInfo,
  start: number,
  length: number,
  options: TransferOptions,
  onBytes: (n: number) => void,
): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let received = 0;
  const stallMs = options.stallTimeoutMs ?? 30_000;
  await withRetries(`GET s3://${bucket}/${key} bytes ${start}-${start + length - 1}`, options, async () => {
    if (received === length) return;
    const abort = new AbortController();
    let timer = setTimeout(() => abort.abort(new Error(`stalled: nothing received for ${stallMs} ms`)), stallMs);
    const feed = () => {
      clearTimeout(timer);
      timer = setTimeout(() => abort.abort(new Error(`stalled: nothing received for ${stallMs} ms`)), stallMs);
    };
    try {
      const response = await client
        .send(
          new GetObjectCommand({
            Bucket: bucket,
            Key: key,
            Range: `bytes=${start + received}-${start + length - 1}`,
            // Every range comes from the same version: a replaced object fails with 412 instead of mixing.
            ...(info.versionId ? { VersionId: info.versionId } : {}),
            ...(info.etag ? { IfMatch: `"${info.etag}"` } : {}),
          }),
          { abortSignal: abort.signal },
        )
        .catch((error: unknown) => {
          if (status(error) === 412) {
            throw new ConflictError(`s3://${bucket}/${key} changed while it was being downloaded`, { cause: error });
          }
          if (status(error) === 404)
            throw new NotFoundError(`s3://${bucket}/${key} disappeared while it was being downloaded`);
          throw error;
        });
      const body = response.Body as AsyncIterable<Uint8Array> & { destroy?: (error?: Error) => void };
      abort.signal.addEventListener('abort', () => body.destroy?.(abort.signal.reason as Error), { once: true });
      for await (const chunk of body) {
        feed();
        const take = Math.min(chunk.length, length - received);
        buffer.set(take === chunk.length ? chunk : chunk.subarray(0, take), received);
        received += take;
        onBytes(take);
      }
      if (received !== length) throw new NetworkError(`connection closed after ${received} of ${length} bytes`);
    } finally {
      clearTimeout(timer);
    }
  });
  return buffer;
}

function throttledProgress(total: number, callback: ProgressCallback | undefined) {
  let done = 0;
  let last = 0;
  return {
    add(n: number) {
      done += n;
      const now = Date.now();
      if (callback && now - last >= 100) {
        last = now;
        callback({ bytesDone: done, bytesTotal: total });
      }
    },
    done() {
      callback?.({ bytesDone: total, bytesTotal: total });
    },
  };
}
