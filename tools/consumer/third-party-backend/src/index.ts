/**
 * A third-party storage backend: it sees @ckpt/core's contract and nothing
 * else of ckpt. Writes are atomic (a temporary file, flushed, renamed) and
 * hashed in the same pass; reads check every length and offset against the
 * file before trusting it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import {
  assertStateTree,
  DTYPES,
  type DType,
  FormatError,
  type Inspection,
  isDType,
  type JsonValue,
  joinTree,
  type Loaded,
  NativeError,
  NativeErrorCode,
  NotFoundError,
  numel,
  type SaveOptions,
  type SaveResult,
  type StateTree,
  type StorageBackend,
  splitTree,
  type Tensor,
  tensor,
} from '@ckpt/core';

const MAGIC = Buffer.from('CKPTBNDL');
const PREFIX = MAGIC.byteLength + 4;
const MAX_HEADER = 64 << 20;

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  offset: number;
  length: number;
}

interface Header {
  tensors: Entry[];
  metadata: Record<string, string>;
  structure: JsonValue;
}

async function save(path: string, state: StateTree, options: SaveOptions = {}): Promise<SaveResult> {
  assertStateTree(state);
  const { tensors, structure } = splitTree(state);
  let offset = 0;
  const entries = tensors.map(([name, t]) => {
    const entry = { name, dtype: t.dtype, shape: [...t.shape], offset, length: t.data.byteLength };
    offset += t.data.byteLength;
    return entry;
  });
  const header = Buffer.from(JSON.stringify({ tensors: entries, metadata: options.metadata ?? {}, structure }));
  const prefix = Buffer.alloc(PREFIX);
  MAGIC.copy(prefix);
  prefix.writeUInt32LE(header.byteLength, MAGIC.byteLength);
  const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const hash = createHash('sha256');
  let size = 0;
  const handle = await open(temporary, 'wx');
  try {
    for (const chunk of [prefix, header, ...tensors.map(([, t]) => t.data)]) {
      hash.update(chunk);
      await handle.writeFile(chunk); // loops over short writes, which a filling disk makes
      size += chunk.byteLength;
    }
    if (options.fsync ?? true) await handle.sync();
    await handle.close();
    await rename(temporary, path);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    if ((error as NodeJS.ErrnoException).code === 'ENOSPC')
      throw new NativeError(NativeErrorCode.NoSpace, `no space left to write ${path}`, { path, cause: error });
    throw error;
  }
  const file = { path, size, sha256: hash.digest('hex') };
  return { ...file, files: [file] };
}

/** Reads and checks the header; never trusts a length or offset from the file. */
async function readHeader(path: string): Promise<{ header: Header; dataStart: number; size: number }> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotFoundError(`file not found: ${path}`, { path });
    throw error;
  }
  const fail = (message: string) => new FormatError(`not a ckpt-bundle file: ${message}`, { path });
  if (size < PREFIX) throw fail(`${size} bytes is too short`);
  const handle = await open(path, 'r');
  try {
    const prefix = Buffer.alloc(PREFIX);
    await handle.read(prefix, 0, PREFIX, 0);
    if (!prefix.subarray(0, MAGIC.byteLength).equals(MAGIC)) throw fail('wrong magic bytes');
    const length = prefix.readUInt32LE(MAGIC.byteLength);
    if (length > MAX_HEADER || PREFIX + length > size) throw fail(`header length ${length} does not fit`);
    const text = Buffer.alloc(length);
    await handle.read(text, 0, length, PREFIX);
    let header: Header;
    try {
      header = JSON.parse(text.toString('utf8'));
    } catch {
      throw fail('the header is not JSON');
    }
    if (!Array.isArray(header?.tensors)) throw fail('the header lists no tensors');
    const dataStart = PREFIX + length;
    let expected = 0;
    for (const t of header.tensors) {
      if (!isDType(t.dtype) || t.offset !== expected || dataStart + t.offset + t.length > size) {
        throw fail(`tensor ${JSON.stringify(t.name)} is out of place`);
      }
      tensor(t.dtype, t.shape, new Uint8Array(t.length)); // checks the shape against the length
      expected += t.length;
    }
    if (dataStart + expected !== size) throw fail('the data section has the wrong size');
    return { header, dataStart, size };
  } finally {
    await handle.close();
  }
}

async function load(path: string): Promise<Loaded> {
  const { header, dataStart } = await readHeader(path);
  const bytes = new Uint8Array(await readFile(path));
  const byName = new Map<string, Tensor>(
    header.tensors.map((t) => [
      t.name,
      tensor(t.dtype, t.shape, bytes.subarray(dataStart + t.offset, dataStart + t.offset + t.length)),
    ]),
  );
  return {
    state: joinTree(header.structure, (name) => byName.get(name)),
    metadata: header.metadata,
    format: 'ckpt-bundle',
    zeroCopy: false,
  };
}

async function inspect(path: string): Promise<Inspection> {
  const { header } = await readHeader(path);
  const tensors = header.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.length }));
  return {
    format: 'ckpt-bundle',
    path,
    files: [path],
    tensors,
    parameterCount: tensors.reduce((sum, t) => sum + numel(t.shape), 0),
    tensorBytes: tensors.reduce((sum, t) => sum + t.byteLength, 0),
    metadata: header.metadata,
  };
}

export const bundleBackend: StorageBackend = {
  name: 'ckpt-bundle',
  extensions: ['.bundle'],
  dtypes: DTYPES.filter((d) => !d.startsWith('F6') && d !== 'F4'),
  detect: (header) => Buffer.from(header.subarray(0, MAGIC.byteLength)).equals(MAGIC),
  save,
  load,
  inspect,
};
