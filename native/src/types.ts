import type { FolderTable } from './folder.js';

/** Bytes done and bytes in all, passed to progress callbacks. */
export interface Progress {
  bytesDone: number;
  bytesTotal: number;
}

export type ProgressCallback = (progress: Progress) => void;

export interface HashOptions {
  /** Called as bytes are hashed (at most every 50 ms on the native path) and once at the end. */
  onProgress?: ProgressCallback;
}

export interface WriteOptions {
  /** Flush the file and its folder to the disk before returning (default true). */
  fsync?: boolean;
  /** Called as bytes are written. */
  onProgress?: ProgressCallback;
}

export interface WriteResult {
  /** Lowercase hex SHA-256 of the bytes written. */
  sha256: string;
  size: number;
}

export interface MapOptions {
  /** Copy each view out of the file instead of pointing into the mapping (what Electron requires). */
  copy?: boolean;
}

/** A streaming SHA-256 hasher. */
export interface Sha256Hasher {
  update(data: Uint8Array): Sha256Hasher;
  /**
   * Hashes `length` bytes of the file at `path` from `offset`, off the
   * JavaScript thread on the native path (a download hashes what it has
   * written while it receives the rest). Await it before the next update.
   */
  updateFromFile(path: string, offset: number, length: number): Promise<void>;
  /** Finishes and returns the lowercase hex digest; the hasher cannot be used afterwards. */
  digest(): string;
}

/**
 * A file opened for reading byte ranges. On the native path the ranges are
 * zero-copy views of a copy-on-write mapping: writing into a view changes this
 * process's copy, never the file.
 */
export interface MappedFile extends Disposable {
  readonly path: string;
  /** Size in bytes when the file was opened. */
  readonly size: number;
  /** True when views point into the mapping rather than being copies. */
  readonly zeroCopy: boolean;
  readonly closed: boolean;
  /** The bytes `[offset, offset + length)`; at most `MAX_VIEW_BYTES` long. */
  view(offset: number, length: number): Uint8Array;
  /** True once a read found the file shorter than when opened; the missing bytes read as zeros. */
  truncated(): boolean;
  /** Throws CKPT_FILE_CHANGED when the file was truncated, resized or modified since it was opened. */
  ensureUnchanged(): void;
  /** Releases the handle. Views already handed out stay valid until they are garbage-collected. */
  close(): void;
}

/** What each implementation (native, JavaScript) provides. */
/** An exclusive inter-process lock on a file; release it when done. */
export interface FileLock extends Disposable {
  readonly path: string;
  readonly released: boolean;
  /** Releases the lock (idempotent). */
  release(): void;
}

export interface LockOptions {
  /** How long to wait for the lock before failing with CKPT_LOCKED (default 30 s; 0 tries once). */
  timeoutMs?: number;
}

export interface Implementation {
  readonly kind: 'native' | 'js';
  sha256File(path: string, options?: HashOptions): Promise<string>;
  sha256Files(paths: readonly string[], options?: HashOptions): Promise<string[]>;
  createSha256(): Sha256Hasher;
  mapFile(path: string, options?: MapOptions): MappedFile;
  writeFileAtomic(path: string, chunks: readonly Uint8Array[], options?: WriteOptions): Promise<WriteResult>;
  crc32Many(buffers: readonly Uint8Array[]): Promise<number[]>;
  tryLockFile(path: string): FileLock | null;
  scanFolder(path: string): Promise<FolderTable>;
}
