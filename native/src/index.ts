/**
 * @ckpt/native: the I/O that decides ckpt's speed, in Rust, with a pure-JavaScript fallback.
 *
 * The Rust binding is used when it loads. Set `CKPT_NATIVE=js` to force the
 * JavaScript path, or `CKPT_NATIVE=native` to fail instead of falling back.
 * Both paths give identical results and the same error codes.
 */
import { type Binding, type BindingSource, loadBinding } from './binding.js';
import { type RangeDownload, type RangeDownloadOptions, startDownload } from './download.js';
import { fromBindingError, NativeErrorCode, nativeError } from './errors.js';
import { FolderListing } from './folder.js';
import { jsImplementation } from './js-impl.js';
import { waitForLock } from './lock.js';
import { nativeImplementation } from './native-impl.js';
import type {
  FileLock,
  HashOptions,
  Implementation,
  LockOptions,
  MapOptions,
  MappedFile,
  Sha256Hasher,
  WriteOptions,
  WriteResult,
} from './types.js';

export { type BindingSource, platformName } from './binding.js';
export {
  type DownloadFailureKind,
  type RangeDownload,
  RangeDownloadError,
  type RangeDownloadOptions,
} from './download.js';
export { renameDurably, syncFolder, TEMP_SUFFIX, tempPathFor } from './durable.js';
export {
  CkptError,
  type CkptErrorDetails,
  fromNodeError,
  message as nativeMessage,
  NativeError,
  NativeErrorCode,
  nativeError,
} from './errors.js';
export { type EntryKind, FolderListing } from './folder.js';
export { processAlive, processStartTime, processTableIdentity } from './lock.js';
export type {
  FileLock,
  HashOptions,
  Implementation,
  LockOptions,
  MapOptions,
  MappedFile,
  Progress,
  ProgressCallback,
  Sha256Hasher,
  WriteOptions,
  WriteResult,
} from './types.js';
export { MAX_VIEW_BYTES } from './views.js';

/**
 * Which implementation is in use: the native binary (and where it came from:
 * the prebuilt platform package, a local build, or `NAPI_RS_NATIVE_LIBRARY_PATH`),
 * or the JavaScript fallback and why.
 */
export type BackendInfo =
  | { kind: 'native'; source: BindingSource; path: string; reason?: undefined }
  | { kind: 'js'; reason: string; source?: undefined; path?: undefined };

/** Says once, on stderr, that the slower path is in use, unless it was asked for or silenced. */
function tellFallback(reason: string): void {
  if (process.env.CKPT_NATIVE_QUIET && process.env.CKPT_NATIVE_QUIET !== '0') return;
  process.stderr.write(
    `ckpt: the native binary did not load (${reason}); using the JavaScript fallback, which is slower. ` +
      'Set CKPT_NATIVE=js to choose it, or CKPT_NATIVE_QUIET=1 to silence this.\n',
  );
}

function select(): { implementation: Implementation; info: BackendInfo; binding?: Binding } {
  const wanted = process.env.CKPT_NATIVE?.trim().toLowerCase();
  if (wanted === 'js') {
    return { implementation: jsImplementation, info: { kind: 'js', reason: 'CKPT_NATIVE=js' } };
  }
  const loaded = loadBinding();
  if (loaded.binding) {
    return {
      implementation: nativeImplementation(loaded.binding),
      info: { kind: 'native', source: loaded.source, path: loaded.path },
      binding: loaded.binding,
    };
  }
  const reason = loaded.error.message;
  if (wanted === 'native') {
    throw new Error(`CKPT_NATIVE=native but the native binding did not load: ${reason}`, { cause: loaded.error });
  }
  tellFallback(reason);
  return { implementation: jsImplementation, info: { kind: 'js', reason: `native binding did not load: ${reason}` } };
}

const selected = select();

/** The implementation in use. */
export const backend: BackendInfo = selected.info;

/** Whether `downloadRange` is available: only on the native path (there is no JavaScript twin). */
export function canDownloadNatively(): boolean {
  return selected.binding !== undefined;
}

/**
 * One ranged HTTP(S) GET written into an existing file at `offset`, on a
 * worker thread. Native path only: check `canDownloadNatively()` first.
 */
export function downloadRange(options: RangeDownloadOptions): RangeDownload {
  if (!selected.binding) {
    throw nativeError(NativeErrorCode.Unsupported, {
      operation: 'downloadRange',
      reason: backend.reason ?? 'not loaded',
    });
  }
  return startDownload(selected.binding, options);
}

/** A safetensors header as flat arrays, as `readSafetensorsHeader` returns it. */
export type SafetensorsHeaderTable = ReturnType<Binding['readSafetensorsHeader']>;

/**
 * Reads and validates the header of a safetensors file with the reference
 * `safetensors` crate, on the calling thread, touching no tensor bytes.
 * Returns undefined when the native binding is not in use (parse in
 * JavaScript then). Refusals are CKPT_FORMAT errors.
 */
export function readSafetensorsHeader(path: string): SafetensorsHeaderTable | undefined {
  if (!selected.binding) return undefined;
  try {
    return selected.binding.readSafetensorsHeader(path);
  } catch (error) {
    throw fromBindingError(error, path);
  }
}

/** Which implementation was taken at load, and from where: the same as `backend`. */
export function getImplementation(): BackendInfo {
  return backend;
}

/**
 * Returns one implementation by kind, whatever the selection: for tests that
 * compare them and for benchmarks. Throws when `native` is asked for and cannot load.
 */
export function implementationOf(kind: 'native' | 'js'): Implementation {
  if (kind === 'js') return jsImplementation;
  const loaded = loadBinding();
  if (!loaded.binding) throw new Error('the native binding did not load', { cause: loaded.error });
  return nativeImplementation(loaded.binding);
}

/**
 * Lists a folder (not its subfolders) with each entry's kind and, for files,
 * size, links not followed: one pass, off the JavaScript thread on the native path.
 */
export async function scanFolder(path: string): Promise<FolderListing> {
  return new FolderListing(await selected.implementation.scanFolder(path));
}

/** SHA-256 of a file as lowercase hex, off the JavaScript thread, the same digest as `sha256sum`. */
export function sha256File(path: string, options?: HashOptions): Promise<string> {
  return selected.implementation.sha256File(path, options);
}

/** SHA-256 of several files in parallel across the cores; digests in input order. */
export function sha256Files(paths: readonly string[], options?: HashOptions): Promise<string[]> {
  return selected.implementation.sha256Files(paths, options);
}

/** A streaming SHA-256 hasher: `new Sha256().update(a).update(b).digest()`. */
export class Sha256 implements Sha256Hasher {
  readonly #inner = selected.implementation.createSha256();

  update(data: Uint8Array): this {
    this.#inner.update(data);
    return this;
  }

  /** Hashes a byte range of a file, off the JavaScript thread; await it before the next update. */
  updateFromFile(path: string, offset: number, length: number): Promise<void> {
    return this.#inner.updateFromFile(path, offset, length);
  }

  digest(): string {
    return this.#inner.digest();
  }
}

/**
 * Opens a file for zero-copy reads of byte ranges. In Electron (which forbids
 * external buffers) or with `{ copy: true }`, views are copies instead.
 */
export function mapFile(path: string, options: MapOptions = {}): MappedFile {
  const copy = options.copy ?? process.versions.electron !== undefined;
  return selected.implementation.mapFile(path, { ...options, copy });
}

/** The CRC-32 (zip's checksum) of each buffer, off the JavaScript thread and across the cores. */
export function crc32Many(buffers: readonly Uint8Array[]): Promise<number[]> {
  return selected.implementation.crc32Many(buffers);
}

/**
 * Writes `chunks` to a temporary file beside `path` while hashing them, flushes,
 * renames it over `path` and flushes the folder. On failure the temporary is
 * removed and an existing file at `path` is left as it was.
 */
export function writeFileAtomic(
  path: string,
  chunks: Iterable<Uint8Array>,
  options?: WriteOptions,
): Promise<WriteResult> {
  return selected.implementation.writeFileAtomic(path, Array.isArray(chunks) ? chunks : [...chunks], options);
}

/**
 * Takes an exclusive inter-process lock on `path` (the file is created and
 * kept), or returns null at once when another holder has it. The lock is
 * released by `release()`, or by the kernel if this process dies.
 */
export function tryLockFile(path: string): FileLock | null {
  return selected.implementation.tryLockFile(path);
}

/** Waits up to `timeoutMs` (default 30 s) for the lock on `path`; fails with CKPT_LOCKED. */
export function lockFile(path: string, options?: LockOptions): Promise<FileLock> {
  return waitForLock((p) => selected.implementation.tryLockFile(p), path, options);
}
