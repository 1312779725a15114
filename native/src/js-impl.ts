import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { type FileHandle, open, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { renameDurably, tempPathFor } from './durable.js';
import { fromNodeError, type NativeError, NativeErrorCode, nativeError } from './errors.js';
import { scanFolderInJavaScript } from './folder.js';
import { tryOwnerLock } from './lock.js';
import type {
  HashOptions,
  Implementation,
  MapOptions,
  MappedFile,
  ProgressCallback,
  Sha256Hasher,
  WriteOptions,
  WriteResult,
} from './types.js';
import { checkView, closedError } from './views.js';

const READ_CHUNK = 1 << 20;
const WRITE_SLICE = 16 << 20;

interface FileIdentity {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

function identity(stats: FileIdentity): string {
  return `${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}`;
}

function changedDetail(before: FileIdentity, after: FileIdentity): string {
  return before.size === after.size
    ? 'it was modified in place'
    : `size went from ${before.size} to ${after.size} bytes`;
}

function fileChanged(path: string, detail: string): NativeError {
  return nativeError(NativeErrorCode.FileChanged, { path, detail });
}

/** Opens `path` for reading and refuses directories and special files. */
async function openRegular(path: string): Promise<{ handle: FileHandle; before: FileIdentity }> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw fromNodeError(error, path, 'open');
  }
  const stats = await handle.stat({ bigint: true });
  if (stats.isFile()) return { handle, before: stats };
  await handle.close();
  if (stats.isDirectory()) {
    throw nativeError(NativeErrorCode.IsDirectory, { path });
  }
  throw nativeError(NativeErrorCode.NotRegularFile, { path });
}

async function hashFile(path: string, onProgress: (bytesDone: number, bytesTotal: number) => void): Promise<string> {
  const { handle, before } = await openRegular(path);
  try {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
    let done = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, done);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      done += bytesRead;
      onProgress(done, Number(before.size));
    }
    const after = await handle.stat({ bigint: true });
    if (BigInt(done) !== before.size || identity(after) !== identity(before)) {
      throw fileChanged(
        path,
        BigInt(done) < before.size ? 'it was truncated while being hashed' : changedDetail(before, after),
      );
    }
    onProgress(done, done);
    return hash.digest('hex');
  } catch (error) {
    throw fromNodeError(error, path, 'read');
  } finally {
    await handle.close();
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function sha256Files(paths: readonly string[], options: HashOptions = {}): Promise<string[]> {
  const sizes = await Promise.all(paths.map(sizeOf));
  const total = sizes.reduce((a, b) => a + b, 0);
  const perFile = new Array<number>(paths.length).fill(0);
  let done = 0;
  const results = new Array<string>(paths.length);
  const errors = new Array<unknown>(paths.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < paths.length; i = next++) {
      const path = paths[i] as string;
      try {
        results[i] = await hashFile(path, (fileDone) => {
          done += fileDone - (perFile[i] as number);
          perFile[i] = fileDone;
          options.onProgress?.({ bytesDone: done, bytesTotal: total });
        });
      } catch (error) {
        errors[i] = error;
      }
    }
  };
  const workers = Math.max(1, Math.min(paths.length, availableParallelism()));
  await Promise.all(Array.from({ length: workers }, worker));
  // Report the first failure in input order, as the native path does.
  const failed = errors.findIndex((e) => e !== undefined);
  if (failed >= 0) throw errors[failed];
  options.onProgress?.({ bytesDone: total, bytesTotal: total });
  return results;
}

class JsSha256 implements Sha256Hasher {
  #hash: ReturnType<typeof createHash> | undefined = createHash('sha256');

  update(data: Uint8Array): this {
    if (!this.#hash) throw invalidUse('update() after digest(): create a new Sha256');
    this.#hash.update(data);
    return this;
  }

  async updateFromFile(path: string, offset: number, length: number): Promise<void> {
    if (!this.#hash) throw invalidUse('update() after digest(): create a new Sha256');
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw fromNodeError(error, path, 'open');
    }
    try {
      const buffer = Buffer.allocUnsafe(Math.min(length, 1 << 20));
      for (let at = offset; at < offset + length; ) {
        const want = Math.min(buffer.length, offset + length - at);
        const { bytesRead } = await handle.read(buffer, 0, want, at).catch((error: unknown) => {
          throw fromNodeError(error, path, 'read');
        });
        if (bytesRead === 0) {
          const { size } = await handle.stat();
          throw nativeError(NativeErrorCode.OutOfBounds, { path, offset, length, size });
        }
        this.#hash.update(buffer.subarray(0, bytesRead));
        at += bytesRead;
      }
    } finally {
      await handle.close();
    }
  }

  digest(): string {
    if (!this.#hash) throw invalidUse('digest() called twice: create a new Sha256');
    const hex = this.#hash.digest('hex');
    this.#hash = undefined;
    return hex;
  }
}

function invalidUse(message: string): NativeError {
  return nativeError(NativeErrorCode.InvalidArgument, { message });
}

const closeOnCollect = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
});

/** Views are copies read with pread: JavaScript cannot map files. */
class JsMapped implements MappedFile {
  readonly zeroCopy = false;
  readonly size: number;
  #fd: number | undefined;
  readonly #before: FileIdentity;
  #truncated = false;

  constructor(readonly path: string) {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      throw fromNodeError(error, path, 'open');
    }
    const stats = fstatSync(fd, { bigint: true });
    if (!stats.isFile()) {
      closeSync(fd);
      throw stats.isDirectory()
        ? nativeError(NativeErrorCode.IsDirectory, { path })
        : nativeError(NativeErrorCode.NotRegularFile, { path });
    }
    this.#fd = fd;
    this.#before = stats;
    this.size = Number(stats.size);
    closeOnCollect.register(this, fd, this);
  }

  get closed(): boolean {
    return this.#fd === undefined;
  }

  #open(): number {
    if (this.#fd === undefined) throw closedError(this.path);
    return this.#fd;
  }

  view(offset: number, length: number): Uint8Array {
    const fd = this.#open();
    checkView(this.path, this.size, offset, length);
    const bytes = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, bytes, done, Math.min(length - done, 1 << 30), offset + done);
      if (n === 0) {
        // The file shrank: like the mapping, the missing bytes read as zeros.
        this.#truncated = true;
        break;
      }
      done += n;
    }
    return bytes;
  }

  truncated(): boolean {
    this.#open();
    return this.#truncated;
  }

  ensureUnchanged(): void {
    const fd = this.#open();
    const now = fstatSync(fd, { bigint: true });
    if (this.#truncated) throw fileChanged(this.path, 'it was truncated while mapped');
    if (identity(now) !== identity(this.#before)) throw fileChanged(this.path, changedDetail(this.#before, now));
  }

  close(): void {
    if (this.#fd === undefined) return;
    closeOnCollect.unregister(this);
    closeSync(this.#fd);
    this.#fd = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

async function writeFileAtomic(
  path: string,
  chunks: readonly Uint8Array[],
  options: WriteOptions = {},
): Promise<WriteResult> {
  const fsync = options.fsync ?? true;
  const onProgress: ProgressCallback | undefined = options.onProgress;
  const total = chunks.reduce((sum, c) => sum + c.length, 0);
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) {
    throw nativeError(NativeErrorCode.IsDirectory, { path });
  }
  const temp = tempPathFor(path);
  let handle: FileHandle;
  try {
    handle = await open(temp, 'wx', 0o666);
  } catch (error) {
    throw fromNodeError(error, dirname(path), 'create a temporary file in');
  }
  try {
    const hash = createHash('sha256');
    let done = 0;
    for (const chunk of chunks) {
      for (let at = 0; at < chunk.length; at += WRITE_SLICE) {
        const slice = chunk.subarray(at, at + WRITE_SLICE);
        await writeAll(handle, slice);
        hash.update(slice);
        done += slice.length;
        onProgress?.({ bytesDone: done, bytesTotal: total });
      }
    }
    if (fsync) await handle.sync();
    await handle.close();
    await renameDurably(temp, path, { fsync });
    onProgress?.({ bytesDone: total, bytesTotal: total });
    return { sha256: hash.digest('hex'), size: total };
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw fromNodeError(error, path, 'write');
  }
}

/** The pure-JavaScript implementation: node:crypto and node:fs, same results as the native one. */
export const jsImplementation: Implementation = {
  kind: 'js',
  sha256File: (path: string, options: HashOptions = {}) =>
    hashFile(path, (bytesDone, bytesTotal) => options.onProgress?.({ bytesDone, bytesTotal })),
  sha256Files,
  createSha256: () => new JsSha256(),
  mapFile: (path: string, _options: MapOptions = {}) => new JsMapped(path),
  writeFileAtomic,
  crc32Many: async (buffers: readonly Uint8Array[]) => buffers.map((b) => crc32(b)),
  tryLockFile: tryOwnerLock,
  scanFolder: scanFolderInJavaScript,
};
