/**
 * Uploading bytes held in memory (a checkpoint's encoded chunks) as one
 * object: cut into parts in order and hashed as they are cut (on a worker
 * thread), a few parts in flight at once (memory stays at `concurrency`
 * parts), each part retried, and the upload aborted on failure so that no
 * parts are left billed. The
 * object appears only at CompleteMultipartUpload, sent with
 * `If-None-Match: *` so that it never replaces another object.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { type ProgressCallback, Sha256 } from '@ckpt/native';
import { headObject, status, type TransferOptions, withRetries } from '../transfer.js';
import { BackgroundSha256 } from './background-hash.js';

/** S3's smallest part (but the last). */
const MIN_PART_SIZE = 5 << 20;

/** The part size `options` ask for: 16 MiB by default, never under S3's minimum. */
export function partSizeOf(options: { partSize?: number }): number {
  return Math.max(MIN_PART_SIZE, options.partSize ?? 16 << 20);
}

export interface PartUploadOptions extends TransferOptions {
  /** Bytes per part (default 16 MiB, at least 5 MiB). */
  partSize?: number;
  /** Parts in flight (default 8; boto3 sends 10). */
  concurrency?: number;
  /** Whether the server honours If-None-Match on writes. */
  conditional?: boolean;
  onProgress?: ProgressCallback;
}

/** Cuts `chunks` into parts of `partSize` in order, each handed to `hash` as it is cut. */
function* cutParts(chunks: readonly Uint8Array[], partSize: number, hash: BackgroundSha256): Generator<Uint8Array> {
  let part = BackgroundSha256.allocate(partSize);
  let filled = 0;
  for (const chunk of chunks) {
    let at = 0;
    while (at < chunk.byteLength) {
      const n = Math.min(partSize - filled, chunk.byteLength - at);
      part.set(chunk.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === partSize) {
        hash.update(part);
        yield part;
        part = BackgroundSha256.allocate(partSize);
        filled = 0;
      }
    }
  }
  if (filled > 0) {
    hash.update(part, filled);
    yield part.subarray(0, filled);
  }
}

/** Creates the multipart upload, and says its id before any part is sent (for the index's intent). */
export async function createUpload(
  client: S3Client,
  bucket: string,
  key: string,
  options: TransferOptions,
): Promise<string> {
  const created = await withRetries(`POST s3://${bucket}/${key}?uploads`, options, () =>
    client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key })),
  );
  if (!created.UploadId) throw new Error(`s3://${bucket}/${key}: the server gave no upload id`);
  return created.UploadId;
}

/** Aborts an upload; one that is already gone is fine. */
export async function abortUpload(client: S3Client, bucket: string, key: string, uploadId: string): Promise<void> {
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
  } catch (error) {
    if (status(error) !== 404) throw error;
  }
}

/**
 * Sends `chunks` (`size` bytes) as the parts of `uploadId` and completes it;
 * returns the SHA-256 of the bytes sent. On failure the upload is aborted.
 */
export async function uploadParts(
  client: S3Client,
  bucket: string,
  key: string,
  uploadId: string,
  chunks: readonly Uint8Array[],
  size: number,
  options: PartUploadOptions = {},
): Promise<string> {
  const partSize = partSizeOf(options);
  // Hashed on a worker thread: this one drives the sockets.
  const hash = new BackgroundSha256();
  const parts = cutParts(chunks, partSize, hash);
  const done: Array<{ PartNumber: number; ETag: string }> = [];
  let next = 1;
  let sent = 0;
  const stop = new AbortController();
  // Each worker takes the next part when it is free: parts are cut (and hashed) in order.
  const worker = async () => {
    for (;;) {
      if (stop.signal.aborted) return;
      const { value: body, done: finished } = parts.next();
      if (finished) return;
      const partNumber = next++;
      const { ETag } = await withRetries(
        `PUT s3://${bucket}/${key} part ${partNumber}`,
        options,
        () =>
          client.send(
            new UploadPartCommand({
              Bucket: bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: partNumber,
              Body: body,
              ContentLength: body.byteLength,
            }),
          ),
        stop.signal,
      );
      if (!ETag) throw new Error(`s3://${bucket}/${key}: part ${partNumber} got no ETag`);
      done.push({ PartNumber: partNumber, ETag });
      sent += body.byteLength;
      options.onProgress?.({ bytesDone: sent, bytesTotal: size });
    }
  };
  try {
    const workers = Array.from({ length: Math.max(1, options.concurrency ?? 8) }, () =>
      worker().catch((error) => {
        stop.abort(error);
        throw error;
      }),
    );
    const results = await Promise.allSettled(workers);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    done.sort((a, b) => a.PartNumber - b.PartNumber);
    await withRetries(`POST s3://${bucket}/${key}?uploadId`, options, async (attempt) => {
      try {
        await client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: done },
            ...(options.conditional ? { IfNoneMatch: '*' } : {}),
          }),
        );
      } catch (error) {
        // A retry after an answer that was lost: the first attempt may have completed it.
        const landed =
          attempt > 0 &&
          [404, 412].includes(status(error) ?? 0) &&
          (await headObject(client, bucket, key, options))?.size === size;
        if (!landed) throw error;
      }
    });
  } catch (error) {
    await hash.close();
    await abortUpload(client, bucket, key, uploadId).catch(() => undefined);
    throw error;
  }
  return hash.digest();
}

/** A small object in one PUT (`If-None-Match: *` where honoured); returns its SHA-256. */
export async function putWhole(
  client: S3Client,
  bucket: string,
  key: string,
  chunks: readonly Uint8Array[],
  size: number,
  options: PartUploadOptions = {},
): Promise<string> {
  const body = Buffer.concat(chunks, size);
  await withRetries(`PUT s3://${bucket}/${key}`, options, () =>
    client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentLength: size,
        ...(options.conditional ? { IfNoneMatch: '*' } : {}),
      }),
    ),
  );
  options.onProgress?.({ bytesDone: size, bytesTotal: size });
  return new Sha256().update(body).digest();
}
