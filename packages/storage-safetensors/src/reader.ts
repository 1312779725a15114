import { open } from 'node:fs/promises';
import { type DType, elementBits, InvalidArgumentError, NotFoundError, type Tensor, tensor } from '@ckpt/core';
import { fromNodeError, MAX_VIEW_BYTES, type MappedFile, mapFile, NativeErrorCode, nativeError } from '@ckpt/native';
import { type HeaderEntry, LENGTH_PREFIX_BYTES, parseHeader, readHeaderLength } from './header.js';
import { type FileHeader, isFormatRefusal, readHeaderNatively, refusalOf } from './native-header.js';

export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  byteLength: number;
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
}

/** Bytes read with the first read: the length prefix and, usually, the whole header. */
const FIRST_READ = 64 * 1024;

/**
 * Reads and validates the header of a safetensors file, touching no tensor
 * bytes: by the addon (the reference crate's validation) when it is in use,
 * else in JavaScript. A file the addon refuses is read again in JavaScript
 * for its detailed message; the two parsers agree on every file tested.
 */
export async function readHeader(path: string): Promise<FileHeader> {
  let header: FileHeader | undefined;
  try {
    header = readHeaderNatively(path);
  } catch (error) {
    if (!isFormatRefusal(error)) throw error;
    await readHeaderInJavaScript(path);
    throw refusalOf(error, path);
  }
  return header ?? readHeaderInJavaScript(path);
}

/** The JavaScript parser: the fallback without the addon, and the source of detailed refusals. */
export async function readHeaderInJavaScript(path: string): Promise<FileHeader> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw fromNodeError(error, path, 'open');
  }
  try {
    const first = new Uint8Array(FIRST_READ);
    const [stats, { bytesRead }] = await Promise.all([handle.stat(), handle.read(first, 0, FIRST_READ, 0)]);
    if (stats.isDirectory()) {
      throw nativeError(NativeErrorCode.IsDirectory, { path });
    }
    const headerLength = readHeaderLength(first.subarray(0, bytesRead), stats.size, path);
    let bytes = first.subarray(LENGTH_PREFIX_BYTES, LENGTH_PREFIX_BYTES + headerLength);
    if (bytes.byteLength < headerLength) {
      bytes = new Uint8Array(headerLength);
      const rest = await handle.read(bytes, 0, headerLength, LENGTH_PREFIX_BYTES);
      bytes = bytes.subarray(0, rest.bytesRead);
    }
    const parsed = parseHeader(bytes, stats.size, path);
    return { ...parsed, fileSize: stats.size, names: parsed.entries.map((e) => e.name) };
  } finally {
    await handle.close();
  }
}

function toEntry(entry: HeaderEntry, dataStart: number): TensorEntry {
  return {
    name: entry.name,
    dtype: entry.dtype,
    shape: entry.shape,
    byteLength: entry.end - entry.begin,
    offset: dataStart + entry.begin,
  };
}

/**
 * An open safetensors file. The header is read and validated on open; the
 * file is mapped on first tensor access, once, and every tensor is a view of
 * that mapping (or a copy with `copy: true`).
 */
export class SafetensorsFile {
  readonly path: string;
  readonly fileSize: number;
  readonly metadata: Record<string, string>;
  readonly #header: FileHeader;
  readonly #copy: boolean;
  #tensors: readonly TensorEntry[] | undefined;
  #byName: Map<string, TensorEntry> | undefined;
  #mapped: MappedFile | undefined;

  private constructor(path: string, header: FileHeader, copy: boolean) {
    this.path = path;
    this.fileSize = header.fileSize;
    this.metadata = header.metadata ?? {};
    this.#header = header;
    this.#copy = copy;
  }

  static async open(path: string, options: { copy?: boolean } = {}): Promise<SafetensorsFile> {
    return new SafetensorsFile(path, await readHeader(path), options.copy ?? false);
  }

  /** Tensor names in file order. */
  get names(): string[] {
    return [...this.#header.names];
  }

  /** Tensors in file order (built on first use). */
  get tensors(): readonly TensorEntry[] {
    this.#tensors ??= this.#header.entries.map((e) => toEntry(e, this.#header.dataStart));
    return this.#tensors;
  }

  #entry(name: string): TensorEntry | undefined {
    this.#byName ??= new Map(this.tensors.map((t) => [t.name, t]));
    return this.#byName.get(name);
  }

  has(name: string): boolean {
    return this.#entry(name) !== undefined;
  }

  /** Whether tensors are views of the mapping rather than copies. */
  get zeroCopy(): boolean {
    return !this.#copy && this.#map().zeroCopy;
  }

  #map(): MappedFile {
    if (!this.#mapped) {
      const mapped = mapFile(this.path, { copy: this.#copy });
      // The header was validated against the size seen then: a file replaced
      // or resized since must not be read with it.
      if (mapped.size !== this.fileSize) {
        mapped.close();
        throw nativeError(
          NativeErrorCode.FileChanged,
          { path: this.path, detail: 'its size is not the one its header was read at' },
          { expected: `${this.fileSize} bytes`, found: `${mapped.size} bytes` },
        );
      }
      this.#mapped = mapped;
    }
    return this.#mapped;
  }

  tensor(name: string): Tensor {
    const entry = this.#entry(name);
    if (!entry) {
      throw new NotFoundError(`no tensor named ${JSON.stringify(name)} in ${this.path}`, {
        path: this.path,
        found: name,
      });
    }
    return tensor(entry.dtype, entry.shape, this.#map().view(entry.offset, entry.byteLength));
  }

  /**
   * A tensor's bytes as consecutive views of at most `chunkBytes` each
   * (default: the longest view this Node allows, `MAX_VIEW_BYTES`), cut on
   * element boundaries. For a tensor too long for one view: over 4 GiB on
   * Node 20, where `tensor()` and `load()` refuse it with CKPT_VIEW_TOO_LARGE.
   */
  *tensorChunks(name: string, chunkBytes: number = MAX_VIEW_BYTES): Generator<Uint8Array> {
    const entry = this.#entry(name);
    if (!entry) {
      throw new NotFoundError(`no tensor named ${JSON.stringify(name)} in ${this.path}`, {
        path: this.path,
        found: name,
      });
    }
    const bits = elementBits(entry.dtype);
    const element = bits >= 8 ? bits / 8 : 1; // sub-byte elements: any whole byte holds whole elements
    const step = Math.floor(Math.min(chunkBytes, MAX_VIEW_BYTES) / element) * element;
    if (!Number.isSafeInteger(step) || step < element)
      throw new InvalidArgumentError(`chunkBytes must hold at least one ${entry.dtype} element, got ${chunkBytes}`);
    const mapped = this.#map();
    for (let at = 0; at < entry.byteLength; at += step)
      yield mapped.view(entry.offset + at, Math.min(step, entry.byteLength - at));
  }

  /** Releases the mapping handle; tensors already taken stay valid. */
  close(): void {
    this.#mapped?.close();
    this.#mapped = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
