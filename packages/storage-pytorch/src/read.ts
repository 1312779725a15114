/**
 * Reading torch.save files: the zip format of torch 1.6 and later, and the
 * legacy format before it. Records are mapped and tensors are views of them
 * wherever their bytes are contiguous.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import {
  bareRecord,
  type DType,
  dtypeInfo,
  FormatError,
  ProgramError,
  type StateValue,
  type Tensor,
  UnsupportedError,
} from '@ckpt/core';
import { fromNodeError, mapFile, NativeErrorCode, nativeError } from '@ckpt/native';
import { type AllowListOptions, createResolver } from './allow-list.js';
import { referencedGlobals } from './pickle/scan.js';
import {
  type Fail,
  GlobalRef,
  PyTuple,
  type UnpicklerHooks,
  UnsafePickleError,
  unpickleFrom,
} from './pickle/unpickler.js';
import { makeStorage, planView, rebuildTensor, type StorageRef, type ViewRequest } from './tensors.js';
import { STORAGE_CLASS_DTYPE } from './torch-types.js';
import { METADATA_RECORD } from './write.js';
import { type ByteSource, ZipArchive, type ZipLimits } from './zip/reader.js';

export interface TorchReadOptions extends AllowListOptions, ZipLimits {
  /** Copy tensor bytes out of the file instead of handing out views of the mapping. */
  copy?: boolean;
  /** Bytes that may be allocated to copy non-contiguous views (default: 1 GiB or 4 x the file size, whichever is more). */
  maxCopyBytes?: number;
  /** Check the CRC-32 of every record, which reads every byte (default: only data.pkl). */
  verifyCrc?: boolean;
}

export interface TorchFile {
  value: StateValue;
  /** Metadata ckpt saved beside the pickle (torch files have none of their own). */
  metadata: Record<string, string>;
  format: 'zip' | 'legacy';
  /** Whether tensors are views of the mapped file. */
  zeroCopy: boolean;
}

/** A tensor as `inspect` sees it: described by its header, its bytes never read. */
export class TensorStub {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly byteLength: number,
  ) {
    Object.freeze(this);
  }
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

/** A byte source over plain reads, for work that must not map the file (inspect). */
function readSource(path: string): ByteSource & { close(): void } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw fromNodeError(error, path, 'open');
  }
  const stats = fstatSync(fd);
  if (stats.isDirectory()) {
    closeSync(fd);
    throw nativeError(NativeErrorCode.IsDirectory, { path });
  }
  return {
    path,
    size: stats.size,
    read(offset, length) {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, out, done, length - done, offset + done);
        if (n === 0) throw nativeError(NativeErrorCode.FileChanged, { path, detail: 'it ended early' });
        done += n;
      }
      return out;
    },
    close: () => closeSync(fd),
  };
}

function mappedSource(path: string, copy: boolean): ByteSource & { close(): void; zeroCopy: boolean } {
  const file = mapFile(path, { copy });
  return { path, size: file.size, read: (o, l) => file.view(o, l), close: () => file.close(), zeroCopy: file.zeroCopy };
}

/** Reads a torch.save file; with `stubs`, tensors are TensorStubs and no tensor byte is touched. */
export function readTorch(path: string, options: TorchReadOptions = {}, stubs = false): TorchFile {
  const source = stubs ? readSource(path) : mappedSource(path, options.copy ?? false);
  try {
    return readTorchFrom(source, options, stubs);
  } finally {
    source.close();
  }
}

/** Reads a torch.save archive from any byte source (a byte range of a larger file, say). */
export function readTorchFrom(
  source: ByteSource & { zeroCopy?: boolean },
  options: TorchReadOptions = {},
  stubs = false,
): TorchFile {
  const head = source.read(0, Math.min(4, source.size));
  const format = ZIP_MAGIC.every((b, i) => head[i] === b) ? 'zip' : 'legacy';
  const { value, metadata } =
    format === 'zip' ? readZip(source, options, stubs) : { value: readLegacy(source, options, stubs), metadata: {} };
  return { value, metadata, format, zeroCopy: !stubs && source.zeroCopy === true };
}

function tensorMaker(path: string, size: number, options: TorchReadOptions, stubs: boolean) {
  const budget = { remaining: options.maxCopyBytes ?? Math.max(2 ** 30, 4 * size) };
  return (request: ViewRequest): Tensor => {
    if (!stubs) return rebuildTensor(request, budget, path);
    // The same checks as for a real tensor, without its bytes.
    const plan = planView(request, path);
    return new TensorStub(plan.dtype, plan.shape, plan.byteLength) as unknown as Tensor;
  };
}

/** Parses `('storage', storage_type, key, location, numel[, view_metadata])`. */
function storageDescriptor(pid: unknown[], fail: Fail) {
  const [, type, key, , numel] = pid;
  if (!(type instanceof GlobalRef)) return fail('a storage id without a storage type');
  const className = type.fullName.split('.').at(-1) as string;
  const dtype: DType | undefined = STORAGE_CLASS_DTYPE[className];
  if (!dtype && className !== 'UntypedStorage') return fail(`unknown storage type ${type.fullName}`);
  if (typeof key !== 'string') return fail('a storage key that is not a string');
  if (!Number.isSafeInteger(numel) || (numel as number) < 0)
    return fail(`storage ${key} has a size of ${String(numel)} elements`);
  const elementSize = dtype ? dtypeInfo(dtype).bits / 8 : 1;
  return { key, dtype, numel: numel as number, bytes: (numel as number) * elementSize, viewMetadata: pid[5] };
}

function readMetadata(zip: ZipArchive, name: string, path: string): Record<string, string> {
  const record = zip.get(name);
  if (!record) return {};
  if (record.size > 1 << 24) throw new FormatError('the ckpt metadata record is too large', { path });
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(zip.read(record, { verifyCrc: true })).toString('utf8'));
  } catch {
    throw new FormatError('the ckpt metadata record is not JSON', { path });
  }
  if (typeof parsed !== 'object' || parsed === null || !Object.values(parsed).every((v) => typeof v === 'string')) {
    throw new FormatError('the ckpt metadata record is not an object of strings', { path });
  }
  return bareRecord(Object.entries(parsed as Record<string, string>));
}

function readZip(
  source: ByteSource,
  options: TorchReadOptions,
  stubs: boolean,
): { value: StateValue; metadata: Record<string, string> } {
  const path = source.path;
  const zip = ZipArchive.open(source, options);
  const first = zip.entries[0];
  if (!first) throw new FormatError('the zip archive is empty: not a torch.save file', { path });
  const slash = first.name.indexOf('/');
  if (slash <= 0)
    throw new FormatError(`zip entry ${JSON.stringify(first.name)} is not in a folder: not a torch.save file`, {
      path,
    });
  const folder = first.name.slice(0, slash);
  const entry = (name: string) => zip.get(`${folder}/${name}`);
  if (entry('constants.pkl') || zip.entries.some((e) => e.name.startsWith(`${folder}/code/`))) {
    throw new ProgramError(
      'this is a TorchScript archive (torch.jit.save): a program, not a checkpoint. ckpt never runs code from a file, and torch.load(weights_only=True) refuses it too; load it with torch.jit.load only if you trust its author',
      { path, found: 'TorchScript code (code/, constants.pkl)', expected: 'a torch.save checkpoint' },
    );
  }
  const pickle = entry('data.pkl');
  if (!pickle) throw new FormatError(`the archive has no ${folder}/data.pkl: not a torch.save file`, { path });
  const versionEntry = entry('version') ?? entry('.data/version');
  if (!versionEntry) throw new FormatError('the archive has no version record: not a torch.save file', { path });
  // Small text records: their sizes are checked before anything is read or decoded.
  const smallText = (record: typeof versionEntry) => {
    if (record.size > 64) throw new FormatError(`${record.name} is ${record.size} bytes: not a torch record`, { path });
    return Buffer.from(zip.read(record)).toString('latin1');
  };
  const version = Number(smallText(versionEntry).trim());
  if (!Number.isInteger(version) || version < 1 || version > 20) {
    throw new FormatError(`unknown torch archive version ${JSON.stringify(version)}`, { path });
  }
  const byteorderEntry = entry('byteorder');
  const byteorder = byteorderEntry ? smallText(byteorderEntry) : 'little';
  if (byteorder !== 'little' && byteorder !== 'big')
    throw new FormatError(`unknown byteorder ${JSON.stringify(byteorder)}`, { path });

  const storages = new Map<string, StorageRef>();
  const hooks: UnpicklerHooks = {
    resolveGlobal: createResolver(tensorMaker(path, source.size, options, stubs), options),
    persistentLoad(pid, fail) {
      const d = storageDescriptor(pid, fail);
      const cached = storages.get(d.key);
      if (cached) return cached;
      const record = entry(`data/${d.key}`);
      if (!record) return fail(`storage record data/${d.key} is missing from the archive`);
      if (record.size !== d.bytes) {
        return fail(
          `storage record data/${d.key} holds ${record.size} bytes, but the checkpoint says ${d.numel} elements (${d.bytes} bytes)`,
        );
      }
      const bytes = stubs ? new Uint8Array(0) : zip.read(record, { verifyCrc: options.verifyCrc });
      const storage = makeStorage(d.key, d.dtype, bytes, byteorder === 'big', d.bytes);
      storages.set(d.key, storage);
      return storage;
    },
  };
  const value = unpickleFrom(zip.read(pickle, { verifyCrc: true }), 0, hooks, { path }).value;
  return { value, metadata: readMetadata(zip, `${folder}/${METADATA_RECORD}`, path) };
}

/** A POSIX tar archive: "ustar" at offset 257 of its first header. */
function isTar(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 262 && Buffer.from(bytes.subarray(257, 262)).toString('latin1') === 'ustar';
}

function readLegacy(source: ByteSource, options: TorchReadOptions, stubs: boolean): StateValue {
  const path = source.path;
  const bytes = source.read(0, source.size);
  if (isTar(bytes)) {
    throw new UnsupportedError(
      "a torch checkpoint in the tar format of torch's first releases (before 0.2): not read by ckpt; load it with torch and save it again",
      { path, found: 'a tar archive' },
    );
  }
  if (bytes.byteLength < 2 || bytes[0] !== 0x80) {
    const globals = referencedGlobals(bytes);
    if (globals.length > 0) {
      throw new UnsafePickleError(
        `not a torch checkpoint but a bare pickle that references ${globals.join(', ')}: refused, and nothing was run`,
        { path, global: globals[0] },
      );
    }
    throw new FormatError('not a torch checkpoint: neither a zip archive nor a legacy torch file', { path });
  }
  // The small pickles of the header admit no globals at all.
  const plain: UnpicklerHooks = {
    resolveGlobal: (module, name) => {
      throw new UnsafePickleError(
        `refused to load ${module}.${name}: a legacy header holds no globals, and nothing was run`,
        {
          global: `${module}.${name}`,
        },
      );
    },
    persistentLoad: (_pid, fail) => fail('a persistent id in a legacy header'),
  };
  const magic = unpickleFrom(bytes, 0, plain, { path });
  if (magic.value !== LEGACY_MAGIC)
    throw new FormatError("not a torch checkpoint: the first pickle is not torch's magic number", { path });
  const protocol = unpickleFrom(bytes, magic.end, plain, { path });
  if (protocol.value !== LEGACY_PROTOCOL)
    throw new FormatError(`unknown legacy protocol ${String(protocol.value)}`, { path });
  const sysInfo = unpickleFrom(bytes, protocol.end, plain, { path });
  const info = sysInfo.value as Record<string, unknown> | null;
  const bigEndian = typeof info === 'object' && info !== null && info.little_endian === false;
  const mainStart = sysInfo.end;
  // First pass: learn each storage's element type from the main pickle, with stub tensors.
  const descriptors = new Map<string, ReturnType<typeof storageDescriptor>>();
  const { end: mainEnd } = unpickleFrom(
    bytes,
    mainStart,
    {
      resolveGlobal: createResolver(tensorMaker(path, source.size, options, true), options),
      persistentLoad(pid, fail) {
        const d = storageDescriptor(pid, fail);
        descriptors.set(d.key, d);
        return makeStorage(d.key, d.dtype, new Uint8Array(0), bigEndian, d.bytes);
      },
    },
    { path },
  );

  const keys = unpickleFrom(bytes, mainEnd, plain, { path });
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) {
    throw new FormatError('the legacy storage key list is not a list of strings', { path });
  }

  // Then the data: for each key, an i64 element count and the raw bytes.
  const ranges = new Map<string, Uint8Array>();
  let at = keys.end;
  for (const key of keys.value as string[]) {
    const d = descriptors.get(key);
    if (!d) throw new FormatError(`legacy storage ${key} is listed but never used`, { path });
    if (at + 8 > bytes.byteLength) throw new FormatError(`legacy storage ${key} is truncated`, { path });
    const count = new DataView(bytes.buffer, bytes.byteOffset + at, 8).getBigInt64(0, !bigEndian);
    if (count !== BigInt(d.numel))
      throw new FormatError(`legacy storage ${key} holds ${count} elements, but the checkpoint says ${d.numel}`, {
        path,
      });
    at += 8;
    if (at + d.bytes > bytes.byteLength)
      throw new FormatError(`legacy storage ${key} runs past the end of the file`, { path });
    ranges.set(key, bytes.subarray(at, at + d.bytes));
    at += d.bytes;
  }
  for (const key of descriptors.keys()) {
    if (!ranges.has(key) && !isView(descriptors.get(key)?.viewMetadata))
      throw new FormatError(`legacy storage ${key} has no data`, { path });
  }

  const storages = new Map<string, StorageRef>();
  return unpickleFrom(
    bytes,
    mainStart,
    {
      resolveGlobal: createResolver(tensorMaker(path, source.size, options, stubs), options),
      persistentLoad(pid, fail) {
        const d = storageDescriptor(pid, fail);
        const view = d.viewMetadata;
        let storage = storages.get(d.key);
        if (!storage) {
          const raw = ranges.get(d.key);
          if (!raw) return fail(`legacy storage ${d.key} has no data`);
          storage = makeStorage(d.key, d.dtype, stubs ? new Uint8Array(0) : raw, bigEndian, raw.byteLength);
          storages.set(d.key, storage);
        }
        if (!isView(view)) return storage;
        // A legacy view: (view_key, offset, size) in elements of the root storage.
        const [viewKey, offset, size] = (view as PyTuple).items;
        const element = d.dtype ? dtypeInfo(d.dtype).bits / 8 : 1;
        if (typeof viewKey !== 'string' || !Number.isSafeInteger(offset) || !Number.isSafeInteger(size))
          return fail('a malformed legacy storage view');
        const start = (offset as number) * element;
        const end = start + (size as number) * element;
        if (start < 0 || end > storage.byteLength)
          return fail(`legacy storage view ${viewKey} lies outside storage ${d.key}`);
        return makeStorage(
          viewKey,
          d.dtype,
          stubs ? new Uint8Array(0) : storage.bytes.subarray(start, end),
          bigEndian,
          end - start,
        );
      },
    },
    { path },
  ).value;
}

function isView(view: unknown): boolean {
  return view instanceof PyTuple && view.items.length === 3;
}
