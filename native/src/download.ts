/**
 * One ranged HTTP GET written into a file by the native addon (`ckpt_io::http`):
 * the socket is read and the file written on a worker thread, with no
 * JavaScript per byte. The resolver uses it for presigned S3 GETs.
 */
import type { Binding } from './binding.js';
import { CkptError } from './errors.js';
import type { ProgressCallback } from './types.js';

export type DownloadFailureKind = 'status' | 'network' | 'stalled' | 'cancelled' | 'file' | 'no-space';

/** A failed range download; `written` bytes (from `offset`) are in the file, so a retry resumes there. */
export class RangeDownloadError extends CkptError {
  override name = 'RangeDownloadError';

  constructor(
    readonly kind: DownloadFailureKind,
    readonly status: number | undefined,
    readonly written: number,
    message: string,
    cause?: unknown,
  ) {
    super('CKPT_DOWNLOAD', message, { cause });
  }
}

export interface RangeDownloadOptions {
  url: string;
  /** Sent as given (`Range`, `If-Match`); `Host` and `Connection` are set by the downloader. */
  headers?: Record<string, string>;
  /** An existing file; the bytes go at `offset`. */
  path: string;
  offset: number;
  /** Bytes to write; the response must carry at least this many. */
  length: number;
  /** Fail when nothing arrives for this long (default 30 s). */
  stallMs?: number;
  /** The running total written, after every write (about every MiB). */
  onProgress?: ProgressCallback;
}

export interface RangeDownload {
  /** Resolves with the bytes written; rejects with a RangeDownloadError. */
  done: Promise<number>;
  /** Stops the transfer at its next read (within 0.2 s). */
  cancel(): void;
}

export function startDownload(binding: Binding, options: RangeDownloadOptions): RangeDownload {
  const download = new binding.NativeDownload();
  let done: Promise<number>;
  try {
    done = download.start(
      {
        url: options.url,
        headers: options.headers ?? {},
        path: options.path,
        offset: options.offset,
        length: options.length,
        stallMs: options.stallMs ?? 30_000,
      },
      options.onProgress,
    );
  } catch (error) {
    done = Promise.reject(error);
  }
  return { done: done.catch((error: unknown) => Promise.reject(translate(error))), cancel: () => download.cancel() };
}

/** The binding's download failure (an Error with `code`, `kind`, `status`, `written`) as a RangeDownloadError. */
function translate(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const { code, kind, status, written } = error as Error & Record<string, unknown>;
  if (code !== 'CKPT_DOWNLOAD' || typeof kind !== 'string' || typeof written !== 'number') return error;
  const httpStatus = typeof status === 'number' && status > 0 ? status : undefined;
  return new RangeDownloadError(kind as DownloadFailureKind, httpStatus, written, error.message, error);
}
