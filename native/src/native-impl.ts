import type { Binding } from './binding.js';
import { fromBindingError } from './errors.js';
import type {
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
import { checkView, closedError } from './views.js';

/** Runs a binding call, turning its errors into NativeErrors. */
function call<T>(fn: () => T, path?: string): T {
  try {
    return fn();
  } catch (error) {
    throw fromBindingError(error, path);
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

class NativeMapped implements MappedFile {
  readonly zeroCopy: boolean;
  readonly size: number;
  #inner: NativeMappedHandle | undefined;

  constructor(
    binding: Binding,
    readonly path: string,
    copy: boolean,
  ) {
    this.#inner = call(() => binding.NativeMappedFile.open(path, copy), path);
    this.size = this.#inner.size;
    this.zeroCopy = !copy;
  }

  get closed(): boolean {
    return this.#inner === undefined;
  }

  #open(): NativeMappedHandle {
    if (!this.#inner) throw closedError(this.path);
    return this.#inner;
  }

  view(offset: number, length: number): Uint8Array {
    const inner = this.#open();
    checkView(this.path, this.size, offset, length);
    return call(() => inner.view(offset, length), this.path);
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
    mapFile: (path: string, options: MapOptions = {}): MappedFile =>
      new NativeMapped(binding, path, options.copy ?? false),
    writeFileAtomic: (path: string, chunks: readonly Uint8Array[], options: WriteOptions = {}): Promise<WriteResult> =>
      callWithProgress(
        (onProgress) => binding.writeFileAtomic(path, [...chunks], options.fsync ?? true, onProgress),
        options.onProgress,
        path,
      ),
  };
}
