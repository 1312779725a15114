/**
 * A complete third-party storage backend in one file: the worked example of
 * docs/writing-a-storage-backend.md, and what @ckpt/testkit tests itself on.
 *
 * The format ("ckpt-simple"): the 8 bytes `CKPTSIMP`, a u32 little-endian
 * header length, a JSON header, then the tensors' bytes back to back.
 */
import { open, stat } from 'node:fs/promises';
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
  type LoadOptions,
  numel,
  type SaveOptions,
  type SaveResult,
  type StateTree,
  type StorageBackend,
  splitTree,
  type Tensor,
  tensor,
} from '@ckpt/core';
import { mapFile, NativeError, writeFileAtomic } from '@ckpt/native';

const MAGIC = Buffer.from('CKPTSIMP');
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
  assertStateTree(state); // typed refusal of values a checkpoint cannot hold
  const { tensors, structure } = splitTree(state); // nested trees: named tensors + JSON for the rest
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
  // Atomic, with the SHA-256 computed in the same pass as the write.
  const written = await writeFileAtomic(path, [prefix, header, ...tensors.map(([, t]) => t.data)], {
    fsync: options.fsync ?? true,
    onProgress: options.onProgress,
  });
  const file = { path, size: written.size, sha256: written.sha256 };
  return { ...file, files: [file] };
}

/** Reads and checks the header; never trusts a length or offset from the file. */
async function readHeader(path: string): Promise<{ header: Header; dataStart: number }> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NativeError('CKPT_NOT_FOUND', `file not found: ${path}`, { path });
    }
    throw error;
  }
  const fail = (message: string) => new FormatError(`not a ckpt-simple file: ${message}`, { path });
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
    const dataStart = PREFIX + length;
    let expected = 0;
    for (const t of header.tensors ?? []) {
      if (!isDType(t.dtype) || t.offset !== expected || dataStart + t.offset + t.length > size) {
        throw fail(`tensor ${JSON.stringify(t.name)} is out of place`);
      }
      tensor(t.dtype, t.shape, new Uint8Array(t.length)); // checks shape against length
      expected += t.length;
    }
    if (dataStart + expected !== size) throw fail('the data section has the wrong size');
    return { header, dataStart };
  } finally {
    await handle.close();
  }
}

async function load(path: string, options: LoadOptions = {}): Promise<Loaded> {
  const { header, dataStart } = await readHeader(path);
  const file = mapFile(path, { copy: options.copy ?? false }); // one mapping, a view per tensor
  try {
    const byName = new Map<string, Tensor>(
      header.tensors.map((t) => [t.name, tensor(t.dtype, t.shape, file.view(dataStart + t.offset, t.length))]),
    );
    return {
      state: joinTree(header.structure, (name) => byName.get(name)),
      metadata: header.metadata,
      format: 'ckpt-simple',
      zeroCopy: file.zeroCopy,
    };
  } finally {
    file.close(); // the views keep the mapping alive
  }
}

async function inspect(path: string): Promise<Inspection> {
  const { header } = await readHeader(path);
  const tensors = header.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.length }));
  return {
    format: 'ckpt-simple',
    path,
    files: [path],
    tensors,
    parameterCount: tensors.reduce((sum, t) => sum + numel(t.shape), 0),
    tensorBytes: tensors.reduce((sum, t) => sum + t.byteLength, 0),
    metadata: header.metadata,
  };
}

export const simpleBackend: StorageBackend = {
  name: 'ckpt-simple',
  extensions: ['.simple'],
  dtypes: DTYPES.filter((d) => !d.startsWith('F6') && d !== 'F4'),
  detect: (header) => Buffer.from(header.subarray(0, MAGIC.byteLength)).equals(MAGIC),
  save,
  load,
  inspect,
};
