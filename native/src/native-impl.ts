import type { Binding } from './binding.js';
import { fromBindingError } from './errors.js';
import { HeldLock, tryOwnerLock } from './lock.js';
import type {
  FileLock,
  HashOptions,
  Implementation,
  MapOptions,
  MappedFile,
  Progress,
  ProgressCallback,
  Sha256Hasher,
  WriteOptions,
  WriteResult,
} from './types.js';
import { checkView, closedError, MAX_VIEW_BYTES } from './views.js';

/** Runs a binding call, turning its errors into NativeErrors. */
function call<T>(fn: () => T, path?: string): T {
  try {
    return fn();
  } catch (error) {
    throw fromBindingError(error, path);
  }
}

async function callAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw fromBindingError(error);
  }
}

/**
 * Runs an asynchronous binding call with a progress callback. An exception in
 * the callback would otherwise surface as an uncaught exception on the
 * JavaScript thread; here it rejects the operation instead.
 */
async function callWithProgress<T>(
  fn: (onProgress: ProgressCallback | undefined) => Promise<T>,
  onProgress: ProgressCallback | undefined,
  path?: string,
): Promise<T> {
  let failure: { error: unknown } | undefined;
  const guarded =
    onProgress &&
    ((progress: Progress) => {
      if (failure) return;
      try {
        onProgress(progress);
      } catch (error) {
        failure = { error };
      }
    });
  let result: T;
  try {
    result = await fn(guarded);
  } catch (error) {
    throw fromBindingError(error, path);
  }
  if (failure) throw failure.error;
  return result;
}

type NativeMappedHandle = InstanceType<Binding['NativeMappedFile']>;

/** Zero-copy windows span at most one view's limit and start every half of that. */
const WINDOW_BYTES = Math.min(MAX_VIEW_BYTES, 2 ** 32);
const WINDOW_STRIDE = WINDOW_BYTES / 2;

/**
 * Views are Uint8Arrays over a few external ArrayBuffers ("windows") of the
 * mapping, made by the binding's `buffer()`: one window for files up to 4 GiB,
 * overlapping windows every 2 GiB above that, so any view up to 2 GiB lies
 * inside one; a longer view gets its own buffer. Where external buffers are
 * forbidden, or with `copy`, each view is a copy made natively.
 */
class NativeMapped implements MappedFile {
  readonly size: number;
  #copy: boolean;
  #inner: NativeMappedHandle | undefined;
  readonly #windows = new Map<number, ArrayBuffer>();

  constructor(
    binding: Binding,
    readonly path: string,
    copy: boolean,
  ) {
    this.#inner = call(() => binding.NativeMappedFile.open(path, copy), path);
    this.size = this.#inner.size;
    this.#copy = copy;
  }

  get zeroCopy(): boolean {
    if (!this.#copy && this.size > 0 && this.#windows.size === 0 && this.#inner) this.#window(0);
    return !this.#copy;
  }

  get closed(): boolean {
    return this.#inner === undefined;
  }

  #open(): NativeMappedHandle {
    if (!this.#inner) throw closedError(this.path);
    return this.#inner;
  }

  /** The window holding `[offset, offset + length)`, or undefined when copies are in use. */
  #window(offset: number, length = 0): { buffer: ArrayBuffer; start: number } | undefined {
    const inner = this.#open();
    const index = this.size <= WINDOW_BYTES ? 0 : Math.floor(offset / WINDOW_STRIDE);
    const start = index * WINDOW_STRIDE;
    const end = Math.min(this.size, start + WINDOW_BYTES);
    if (offset + length > end) {
      // Longer than a window allows: a buffer of its own.
      const own = call(() => inner.buffer(offset, length), this.path);
      return own ? { buffer: own, start: offset } : this.#useCopies();
    }
    let buffer = this.#windows.get(index);
    if (!buffer) {
      const made = call(() => inner.buffer(start, end - start), this.path);
      if (!made) return this.#useCopies();
      buffer = made;
      this.#windows.set(index, buffer);
    }
    return { buffer, start };
  }

  #useCopies(): undefined {
    this.#copy = true; // the runtime forbids external buffers
    return undefined;
  }

  view(offset: number, length: number): Uint8Array {
    const inner = this.#open();
    checkView(this.path, this.size, offset, length);
    if (length === 0) return new Uint8Array(0);
    const window = this.#copy ? undefined : this.#window(offset, length);
    if (window) return new Uint8Array(window.buffer, offset - window.start, length);
    return call(() => inner.copyRange(offset, length), this.path);
  }

  truncated(): boolean {
    const inner = this.#open();
    return call(() => inner.truncated(), this.path);
  }

  ensureUnchanged(): void {
    const inner = this.#open();
    call(() => inner.ensureUnchanged(), this.path);
  }

  close(): void {
    this.#inner?.close();
    this.#inner = undefined;
    this.#windows.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** The Rust implementation, over the loaded binding. */
export function nativeImplementation(binding: Binding): Implementation {
  class NativeSha256 implements Sha256Hasher {
    readonly #inner = new binding.Sha256();
    update(data: Uint8Array): this {
      call(() => this.#inner.update(data));
      return this;
    }
    updateFromFile(path: string, offset: number, length: number): Promise<void> {
      return callAsync(() => this.#inner.updateFromFile(path, offset, length));
    }
    digest(): string {
      return call(() => this.#inner.digest());
    }
  }

  return {
    kind: 'native',
    sha256File: (path: string, options: HashOptions = {}): Promise<string> =>
      callWithProgress((onProgress) => binding.sha256File(path, onProgress), options.onProgress, path),
    sha256Files: (paths: readonly string[], options: HashOptions = {}): Promise<string[]> =>
      callWithProgress((onProgress) => binding.sha256Files([...paths], onProgress), options.onProgress),
    createSha256: (): Sha256Hasher => new NativeSha256(),
    scanFolder: (path: string) => callAsync(() => binding.scanFolder(path)),
    mapFile: (path: string, options: MapOptions = {}): MappedFile =>
      new NativeMapped(binding, path, options.copy ?? false),
    tryLockFile: (path: string): FileLock | null => {
      // flock serialises native processes; the owner file excludes JavaScript-fallback ones too.
      const inner = call(() => binding.tryLockFile(path));
      if (!inner) return null;
      let owner: FileLock | null;
      try {
        owner = tryOwnerLock(path, true);
      } catch (error) {
        inner.release();
        throw error;
      }
      if (!owner) {
        inner.release();
        return null;
      }
      return new HeldLock(path, () => {
        owner.release();
        inner.release();
      });
    },
    crc32Many: (buffers: readonly Uint8Array[]): Promise<number[]> => callAsync(() => binding.crc32Many([...buffers])),
    writeFileAtomic: (path: string, chunks: readonly Uint8Array[], options: WriteOptions = {}): Promise<WriteResult> =>
      callWithProgress(
        (onProgress) => binding.writeFileAtomic(path, [...chunks], options.fsync ?? true, onProgress),
        options.onProgress,
        path,
      ),
  };
}
