/**
 * Downloading one object into a file: parallel ranged GETs pinned to one
 * version of the object, each part retried with backoff and resumed from
 * the byte where its connection dropped, a watchdog that aborts a stalled
 * transfer, and the digests computed in order as parts complete.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, fsyncSync, ftruncateSync, openSync, readSync, writevSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { CkptError, ConflictError, IntegrityError, NativeErrorCode, NetworkError, NotFoundError } from '@ckpt/core';
import {
  canDownloadNatively,
  downloadRange,
  fromNodeError,
  nativeError,
  type ProgressCallback,
  RangeDownloadError,
  Sha256,
} from '@ckpt/native';

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
  /** Bytes per ranged GET (default: an equal share per stream, at least 8 MiB). */
  partSize?: number;
  /**
   * Ranged GETs at once. When neither this nor `partSize` is given, one
   * stream starts, and if after `splitAfterMs` it is slower than
   * `splitBelowBytesPerSecond`, the rest of the object is split among four
   * streams: a fast server is read in one request, a rate-limited
   * connection (remote object stores) gets company.
   */
  concurrency?: number;
  /** When to measure the first stream (default 1000 ms). */
  splitAfterMs?: number;
  /** Split when the first stream is slower than this (default 200 MB/s). */
  splitBelowBytesPerSecond?: number;
  /** Attempts per request after the first (default 5). */
  retries?: number;
  /** First backoff delay; doubled each attempt, with jitter (default 200 ms). */
  retryDelayMs?: number;
  /** Abort a request that receives nothing for this long, then retry it (default 30 s). */
  stallTimeoutMs?: number;
  onProgress?: ProgressCallback;
  /** Flush the file before returning (default true). */
  fsync?: boolean;
  /**
   * Receive through the native addon (presigned GETs read and written on a
   * worker thread, a quarter of the CPU of the SDK's stream) when it is
   * loaded; `false` uses the SDK's stream (default true).
   */
  native?: boolean;
}

/** A transfer that failed after its retries; `cause` holds the last error. */

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The HTTP status of a failed S3 request, when it got that far. */
export function status(error: unknown): number | undefined {
  return (error as SdkError)?.$metadata?.httpStatusCode;
}

/** Worth another attempt: network failures, stalls, throttling and server errors. */
export function retryable(error: unknown): boolean {
  const code = status(error);
  // 501: the server does not implement the request, and never will on a retry.
  if (code !== undefined) return (code >= 500 && code !== 501) || code === 429 || code === 408;
  return !(error instanceof CkptError) || error.code === 'CKPT_NETWORK';
}

export async function withRetries<T>(
  what: string,
  options: TransferOptions,
  attempt: (attemptNumber: number) => Promise<T>,
  /** Once aborted, no more attempts: the reason is thrown as it is. */
  stop?: AbortSignal,
): Promise<T> {
  const retries = options.retries ?? 5;
  const base = options.retryDelayMs ?? 200;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      stop?.throwIfAborted();
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

interface Part {
  start: number;
  length: number;
  /** Bytes of this part already in the file. */
  written: number;
}

/**
 * The digests, computed over the file's contiguous prefix as it grows: the
 * SHA-256 reads the bytes back from the page cache on a native worker thread,
 * so hashing runs beside the receiving, whichever stream wrote the bytes.
 */
class PrefixDigests {
  readonly #sha256 = new Sha256();
  readonly #extra: Array<{ name: 'sha1' | 'md5'; hash: Hash }>;
  #hashed = 0;
  #target = 0;
  /** Set while `#follow` runs; cleared in the same step as its last check, so no advance is missed. */
  #active = false;
  #running: Promise<void> = Promise.resolve();
  #failure: unknown;

  constructor(
    private readonly path: string,
    private readonly fd: number,
    info: ObjectInfo,
  ) {
    // SHA-256 always (it is what the cache records); SHA-1 or MD5 only to check the object against.
    this.#extra = info.sha256
      ? []
      : info.sha1
        ? [{ name: 'sha1', hash: createHash('sha1') }]
        : info.md5
          ? [{ name: 'md5', hash: createHash('md5') }]
          : [];
  }

  /** Moves the target to the end of the contiguous written prefix; hashing follows in the background. */
  advance(parts: readonly Part[]): void {
    let end = 0;
    for (const part of parts) {
      end = part.start + part.written;
      if (part.written < part.length) break;
    }
    this.#target = Math.max(this.#target, end);
    if (this.#active) return;
    this.#active = true;
    this.#running = this.#follow();
  }

  async #follow(): Promise<void> {
    try {
      while (this.#failure === undefined && this.#hashed < this.#target) {
        const [from, length] = [this.#hashed, this.#target - this.#hashed];
        await this.#sha256.updateFromFile(this.path, from, length);
        if (this.#extra.length > 0) this.#hashExtra(from, length);
        this.#hashed += length;
      }
    } catch (error) {
      this.#failure = error;
    } finally {
      this.#active = false;
    }
  }

  #hashExtra(from: number, length: number): void {
    const scratch = Buffer.allocUnsafe(Math.min(length, 4 << 20));
    for (let at = from; at < from + length; ) {
      const n = readSync(this.fd, scratch, 0, Math.min(scratch.length, from + length - at), at);
      if (n === 0) throw new Error(`short read at ${at} of ${this.path}`);
      for (const { hash } of this.#extra) hash.update(scratch.subarray(0, n));
      at += n;
    }
  }

  /** Resolves when no hashing is under way (before the file is closed). */
  async idle(): Promise<void> {
    while (this.#active) await this.#running;
  }

  /** Waits for hashing to reach the end of the file (all parts written). */
  async finish(parts: readonly Part[]): Promise<{ sha256: string; sha1?: string; md5?: string }> {
    this.advance(parts);
    await this.idle();
    if (this.#failure !== undefined) throw this.#failure;
    const out: { sha256: string; sha1?: string; md5?: string } = { sha256: this.#sha256.digest() };
    for (const { name, hash } of this.#extra) out[name] = hash.digest('hex');
    return out;
  }
}

/**
 * Downloads `key` (the version `info` describes) into `path`, which must
 * not exist; returns its SHA-256 after checking it against what `info`
 * carries (our SHA-256, else B2's SHA-1, else a single-part ETag's MD5).
 * By default each stream takes an equal share of the object (at least
 * 8 MiB): fewer requests, and bytes go straight to the file, never held.
 */
export async function downloadObject(
  client: S3Client,
  bucket: string,
  key: string,
  info: ObjectInfo,
  path: string,
  options: TransferOptions = {},
): Promise<string> {
  const adaptive = options.concurrency === undefined && options.partSize === undefined;
  const concurrency = adaptive ? 1 : Math.max(1, options.concurrency ?? 4);
  const partSize = options.partSize ?? Math.max(8 << 20, Math.ceil(info.size / concurrency));
  const parts: Part[] = [];
  for (let start = 0; start < info.size; start += partSize) {
    parts.push({ start, length: Math.min(partSize, info.size - start), written: 0 });
  }
  const fd = openSync(path, 'wx+');
  const digests = new PrefixDigests(path, fd, info);
  try {
    ftruncateSync(fd, info.size);
    const progress = throttledProgress(info.size, options.onProgress);
    // The first failure stops the other streams; the file is closed only once all have settled.
    const stop = new AbortController();
    let next = 0;
    const fetch = (options.native ?? true) && canDownloadNatively() ? fetchPartNatively : fetchPart;
    // Default streams: the first stream's rate is measured from its first bytes (not from the
    // request: a server's time to first byte says nothing about its rate), and splits if slow.
    let probe: NodeJS.Timeout | undefined;
    const measureFirstStream = () => {
      const since = { at: Date.now(), written: parts[0]?.written ?? 0 };
      probe = setTimeout(() => {
        if (stop.signal.aborted || !splitSlowStream(parts, since, options)) return;
        for (let i = 1; i < parts.length; i++) streams.push(launch());
      }, options.splitAfterMs ?? 1000);
    };
    const worker = async () => {
      for (let part = parts[next++]; part && !stop.signal.aborted; part = parts[next++]) {
        await fetch({ client, bucket, key, info, fd, path }, part, options, stop.signal, (n) => {
          if (adaptive && !probe) measureFirstStream();
          progress.add(n);
          digests.advance(parts);
        });
      }
    };
    const launch = () =>
      worker().catch((error: unknown) => {
        if (!stop.signal.aborted) stop.abort(error);
        throw error;
      });
    const streams = Array.from({ length: Math.min(concurrency, Math.max(parts.length, 1)) }, launch);
    // Streams may be added while we wait: wait until no new one appeared.
    for (let settled = 0; settled < streams.length; ) {
      settled = streams.length;
      await Promise.allSettled(streams);
    }
    clearTimeout(probe);
    if (stop.signal.aborted) throw stop.signal.reason; // every failing stream aborts `stop`
    const actual = await digests.finish(parts);
    progress.done();
    if (options.fsync ?? true) fsyncSync(fd);
    check(info, actual, `s3://${bucket}/${key}`);
    return actual.sha256;
  } finally {
    await digests.idle();
    closeSync(fd);
  }
}

/** What the first stream keeps beyond where it is, for the bytes already on their way. */
const SPLIT_MARGIN = 8 << 20;
/** Splitting pays only for at least this much left. */
const SPLIT_MIN = 32 << 20;

/**
 * Shortens the only part (the running stream stops at its new end) and adds
 * three parts for the rest, when that stream is slower than asked. Returns
 * whether it split.
 */
function splitSlowStream(parts: Part[], since: { at: number; written: number }, options: TransferOptions): boolean {
  const [first] = parts;
  if (!first || parts.length !== 1) return false;
  const rate = (first.written - since.written) / Math.max((Date.now() - since.at) / 1000, 0.001);
  const end = first.start + first.length;
  const from = first.start + first.written + SPLIT_MARGIN;
  if (rate >= (options.splitBelowBytesPerSecond ?? 200e6) || end - from < SPLIT_MIN) return false;
  const share = Math.ceil((end - from) / 4);
  first.length = from + share - first.start;
  for (let start = first.start + first.length; start < end; start += share) {
    parts.push({ start, length: Math.min(share, end - start), written: 0 });
  }
  return true;
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

/** The object being downloaded and the file it goes into. */
interface Target {
  client: S3Client;
  bucket: string;
  key: string;
  info: ObjectInfo;
  fd: number;
  path: string;
}

/** The headers that pin a part's request to the object version HEAD saw, and ask only for what is missing. */
function partHeaders(info: ObjectInfo, part: Part): Record<string, string> {
  const from = part.start + part.written;
  return {
    // A whole object is asked for without Range: some servers serve a range by reading the whole object.
    ...(from > 0 || part.length < info.size ? { Range: `bytes=${from}-${part.start + part.length - 1}` } : {}),
    // Every range comes from the same version: a replaced object fails with 412 instead of mixing.
    ...(info.etag ? { 'If-Match': `"${info.etag}"` } : {}),
  };
}

function statusError(status: number, target: Target, cause: unknown): Error {
  const where = `s3://${target.bucket}/${target.key}`;
  if (status === 412) return new ConflictError(`${where} changed while it was being downloaded`, { cause });
  if (status === 404) return new NotFoundError(`${where} disappeared while it was being downloaded`);
  // Shaped as the SDK's errors, so retrying and reporting treat both paths alike.
  return Object.assign(new Error(`GET ${where}: HTTP ${status}`, { cause }), { $metadata: { httpStatusCode: status } });
}

/** Runs `attempt` until `part` is complete, with retries; no new attempt once `stop` aborts. */
function retryPart(
  target: Target,
  part: Part,
  options: TransferOptions,
  stop: AbortSignal,
  attempt: () => Promise<void>,
): Promise<void> {
  const range = `${part.start}-${part.start + part.length - 1}`;
  return withRetries(
    `GET s3://${target.bucket}/${target.key} bytes ${range}`,
    options,
    async () => {
      if (part.written >= part.length) return;
      stop.throwIfAborted();
      await attempt();
    },
    stop,
  );
}

/**
 * One part through the native addon: each attempt presigns a GET (local
 * signing, no request) and the addon writes the response into the file on a
 * worker thread, reporting how far it got, so a retry resumes from there.
 */
async function fetchPartNatively(
  target: Target,
  part: Part,
  options: TransferOptions,
  stop: AbortSignal,
  onWritten: (n: number) => void,
): Promise<void> {
  const { client, bucket, key, info, path } = target;
  await retryPart(target, part, options, stop, async () => {
    const url = await getSignedUrl(
      client,
      new GetObjectCommand({ Bucket: bucket, Key: key, ...(info.versionId ? { VersionId: info.versionId } : {}) }),
      { expiresIn: 3600 },
    );
    // Progress arrives queued from the worker thread, possibly after the result: count each byte once.
    // The part may be shortened while it runs (a split): bytes past its end are not counted, and it stops there.
    let counted = 0;
    const count = (total: number) => {
      const added = Math.min(total - counted, part.length - part.written);
      counted = Math.max(counted, total);
      if (added <= 0) return;
      part.written += added;
      onWritten(added);
      if (part.written >= part.length) download.cancel();
    };
    const download = downloadRange({
      url,
      headers: partHeaders(info, part),
      path,
      offset: part.start + part.written,
      length: part.length - part.written,
      stallMs: options.stallTimeoutMs ?? 30_000,
      onProgress: ({ bytesDone }) => count(bytesDone),
    });
    const cancel = () => download.cancel();
    stop.addEventListener('abort', cancel, { once: true });
    try {
      count(await download.done);
    } catch (error) {
      if (!(error instanceof RangeDownloadError)) throw error;
      count(error.written);
      if (part.written >= part.length) return; // stopped at a split's boundary, or done anyway
      if (error.kind === 'cancelled') throw stop.reason ?? error;
      if (error.kind === 'status') throw statusError(error.status ?? 0, target, error);
      if (error.kind === 'no-space') throw nativeError(NativeErrorCode.NoSpace, { path }, { cause: error });
      if (error.kind === 'file') {
        throw nativeError(NativeErrorCode.Io, { path, op: 'write', message: error.message }, { cause: error });
      }
      throw new NetworkError(error.message, { cause: error });
    } finally {
      stop.removeEventListener('abort', cancel);
    }
  });
}

/** Incoming chunks are gathered to this size (or this many chunks) before each write. */
const WRITE_SIZE = 1 << 20;
const WRITE_CHUNKS = 256;

/**
 * One part, written into the file as it arrives: the received chunks
 * themselves, gathered and written with one synchronous positional writev
 * (no copy into a buffer of ours; a trip through libuv's pool per write would
 * cost more than the write). A dropped or stalled connection resumes from the
 * last byte written.
 */
async function fetchPart(
  target: Target,
  part: Part,
  options: TransferOptions,
  stop: AbortSignal,
  onWritten: (n: number) => void,
): Promise<void> {
  const { client, bucket, key, info, fd } = target;
  const stallMs = options.stallTimeoutMs ?? 30_000;
  let pending: Uint8Array[] = [];
  let filled = 0;
  const flush = () => {
    let position = part.start + part.written;
    let buffers = pending;
    for (let remaining = filled; remaining > 0; ) {
      let n: number;
      try {
        n = writevSync(fd, buffers, position);
      } catch (error) {
        throw fromNodeError(error, target.path, 'write'); // typed: a full disk is not retried like a network
      }
      remaining -= n;
      position += n;
      // A short write: drop what went out and write the rest.
      while (n > 0 && buffers.length > 0) {
        const first = buffers[0] as Uint8Array;
        if (n >= first.length) {
          n -= first.length;
          buffers = buffers.slice(1);
        } else {
          buffers = [first.subarray(n), ...buffers.slice(1)];
          n = 0;
        }
      }
    }
    part.written += filled;
    const n = filled;
    pending = [];
    filled = 0;
    onWritten(n);
  };
  await retryPart(target, part, options, stop, async () => {
    const abort = new AbortController();
    const stalled = () => abort.abort(new Error(`stalled: nothing received for ${stallMs} ms`));
    const stopped = () => abort.abort(stop.reason);
    stop.addEventListener('abort', stopped, { once: true });
    let timer = setTimeout(stalled, stallMs);
    try {
      const { Range, 'If-Match': IfMatch } = partHeaders(info, part);
      const response = await client
        .send(
          new GetObjectCommand({
            Bucket: bucket,
            Key: key,
            ...(Range ? { Range } : {}),
            ...(IfMatch ? { IfMatch } : {}),
            ...(info.versionId ? { VersionId: info.versionId } : {}),
          }),
          { abortSignal: abort.signal },
        )
        .catch((error: unknown) => {
          const code = status(error);
          throw code === 412 || code === 404 ? statusError(code, target, error) : error;
        });
      const body = response.Body as AsyncIterable<Uint8Array> & { destroy?: (error?: Error) => void };
      abort.signal.addEventListener('abort', () => body.destroy?.(abort.signal.reason as Error), { once: true });
      for await (const chunk of body) {
        clearTimeout(timer);
        timer = setTimeout(stalled, stallMs);
        const room = part.length - part.written - filled;
        if (room <= 0) break; // the part is complete (the server sent more, or the part was shortened)
        const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
        pending.push(piece);
        filled += piece.length;
        if (filled >= WRITE_SIZE || pending.length >= WRITE_CHUNKS) flush();
      }
      body.destroy?.();
      if (filled > 0) flush();
      if (part.written < part.length) {
        throw new NetworkError(`connection closed after ${part.written} of ${part.length} bytes`);
      }
    } catch (error) {
      if (filled > 0) flush(); // keep what arrived: the retry asks only for the rest
      throw error;
    } finally {
      clearTimeout(timer);
      stop.removeEventListener('abort', stopped);
    }
  });
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
