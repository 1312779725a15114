/**
 * Reading the `.metadata` file of a torch.distributed.checkpoint (DCP)
 * folder: a pickle of DCP's dataclasses. It goes through the same machine
 * as torch.save files, with an allow-list of exactly the classes DCP
 * writes, each an inert record of its fields; anything else is refused and
 * nothing is run. torch itself reads this file with the unrestricted
 * `pickle.load`.
 */
import { type DType, FormatError, type StateValue, shown, UnsupportedError } from '@ckpt/core';
import { createResolver } from '../allow-list.js';
import {
  type Fail,
  type GlobalHandler,
  GlobalRef,
  PyBuilt,
  PyDict,
  PyList,
  PyTuple,
  UnsafePickleError,
  unpickleFrom,
} from '../pickle/unpickler.js';
import { TORCH_DTYPE } from '../torch-types.js';

export const METADATA_FILE = '.metadata';

/** One stored piece of a tensor: the box at `offsets` of extent `sizes`. */
export interface DcpChunk {
  readonly offsets: readonly number[];
  readonly sizes: readonly number[];
}

export interface DcpTensorEntry {
  readonly kind: 'tensor';
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly chunks: readonly DcpChunk[];
}

/** A value DCP stores as the bytes of its own torch.save (anything that is not a tensor). */
export interface DcpBytesEntry {
  readonly kind: 'bytes';
}

export type DcpEntry = DcpTensorEntry | DcpBytesEntry;

/** Where one item's bytes are: a byte range of a file in the checkpoint folder. */
export interface DcpStorageInfo {
  readonly file: string;
  readonly offset: number;
  readonly length: number;
}

export interface DcpMetadata {
  /** Flattened keys ('model.layer.weight') in the order DCP wrote them. */
  readonly entries: ReadonlyMap<string, DcpEntry>;
  /** Each flattened key's path in the nested state dict, when DCP recorded one. */
  readonly paths: ReadonlyMap<string, readonly (string | number)[]>;
  /** The storage of each item, by `itemKey(fqn, offsets)`. */
  readonly storage: ReadonlyMap<string, DcpStorageInfo>;
  readonly version: string | null;
}

/** The key of one item: a tensor chunk by its offsets, a bytes value by its name alone. */
export function itemKey(fqn: string, offsets: readonly number[] | null): string {
  return JSON.stringify([fqn, offsets]);
}

const DCP = 'torch.distributed.checkpoint.metadata';
/** The classes DCP pickles, each read as an inert record of its fields. */
const DATACLASSES = new Set([
  `${DCP}.Metadata`,
  `${DCP}.TensorStorageMetadata`,
  `${DCP}.TensorProperties`,
  `${DCP}.ChunkStorageMetadata`,
  `${DCP}.BytesStorageMetadata`,
  `${DCP}.MetadataIndex`,
  `${DCP}.StorageMeta`,
  'torch.distributed.checkpoint.filesystem._StorageInfo',
]);
/** Globals DCP names beside its classes; torch.save's own handlers read them. */
const TORCH_GLOBALS = new Set(['torch.Size', 'torch.serialization._get_layout']);
const PATH_CLASSES = new Set([
  'pathlib.PosixPath',
  'pathlib.WindowsPath',
  'pathlib.PurePosixPath',
  'pathlib.PureWindowsPath',
  'pathlib._local.PosixPath',
  'pathlib._local.WindowsPath',
]);
const MAX_DIMS = 64;
const MAX_PATH_DEPTH = 1000;

/** An instance of a DCP dataclass: its fields (or its tuple state) as pickled, not yet checked. */
class Dataclass extends PyBuilt {
  readonly fields = new Map<string, unknown>();
  tupleState: unknown[] | undefined;
  constructor(readonly className: string) {
    super();
  }
  setState(state: unknown, fail: Fail): void {
    if (state instanceof PyTuple && !(this.className.endsWith('TensorProperties') && state.items.length === 5)) {
      // (dict, slots) as Python pickles classes with __slots__.
      for (const part of state.items) if (part instanceof PyDict) this.#take(part, fail);
      return;
    }
    if (state instanceof PyTuple) this.tupleState = state.items;
    else if (state instanceof PyDict) this.#take(state, fail);
    else if (state !== null) fail(`${this.className} has a state of an unexpected kind`);
  }
  #take(dict: PyDict, fail: Fail) {
    for (const [key, value] of dict.entries.values()) {
      if (typeof key !== 'string') fail(`${this.className} has a field name that is not a string`);
      this.fields.set(key as string, value);
    }
  }
  /** MetadataIndex is a frozen dataclass: Python hashes it by fqn and offset (not index). */
  override dictKey(fail: Fail): string {
    if (!this.className.endsWith('.MetadataIndex')) return fail(`${this.className} cannot be a dict key`);
    const parsed = parseIndex(this, fail);
    return itemKey(parsed.fqn, parsed.offsets);
  }
  toValue(_convert: unknown, fail: Fail): StateValue {
    return fail(`the DCP metadata holds a ${this.className} where a Metadata was expected`);
  }
}

/** The Metadata object at the top of the file, checked and turned into DcpMetadata at the end. */
class MetadataObject extends Dataclass {
  override toValue(_convert: unknown, fail: Fail): StateValue {
    return parseMetadata(this, fail) as unknown as StateValue;
  }
}

/** The handler of each global the metadata may name; nothing else resolves. */
function dcpResolver(): (module: string, name: string) => GlobalHandler {
  const torch = createResolver(() => {
    throw new FormatError('the DCP metadata holds a tensor: it never does');
  });
  return (module, name) => {
    const fullName = `${module}.${name}`;
    if (fullName === `${DCP}._MEM_FORMAT_ENCODING`) return { call: ([code]) => ({ memoryFormat: code }) };
    if (DATACLASSES.has(fullName)) {
      const make = () => (name === 'Metadata' ? new MetadataObject(fullName) : new Dataclass(fullName));
      return { create: make, call: make };
    }
    if (PATH_CLASSES.has(fullName)) return { call: (parts) => parts.filter((p) => typeof p === 'string').join('/') };
    if (TORCH_GLOBALS.has(fullName) || (module === 'torch' && TORCH_DTYPE[name] !== undefined))
      return torch(module, name);
    throw new UnsafePickleError(
      `refused to load ${fullName}: it is not one of the classes torch.distributed.checkpoint writes in .metadata, and nothing was imported or run`,
      { global: fullName },
    );
  };
}

/** Parses a `.metadata` file's bytes. */
export function parseDcpMetadata(bytes: Uint8Array, path: string): DcpMetadata {
  if (bytes[0] !== 0x80)
    throw new FormatError(`${METADATA_FILE} is not a pickle (it does not start with a protocol opcode)`, { path });
  const { value } = unpickleFrom(
    bytes,
    0,
    {
      resolveGlobal: dcpResolver(),
      persistentLoad: (_pid, fail) => fail('a persistent id in DCP metadata'),
    },
    { path, protocol4: true },
  );
  if (!(value instanceof ParsedMetadata))
    throw new FormatError('the .metadata pickle does not hold a DCP Metadata object', { path });
  return value;
}

class ParsedMetadata implements DcpMetadata {
  constructor(
    readonly entries: ReadonlyMap<string, DcpEntry>,
    readonly paths: ReadonlyMap<string, readonly (string | number)[]>,
    readonly storage: ReadonlyMap<string, DcpStorageInfo>,
    readonly version: string | null,
  ) {
    Object.freeze(this);
  }
}

// ---- Checking each dataclass's fields ----

function instanceOf(value: unknown, className: string, fail: Fail): Dataclass {
  if (value instanceof Dataclass && value.className === `${DCP}.${className}`) return value;
  if (value instanceof Dataclass && value.className.endsWith(`.${className}`)) return value;
  return fail(`expected a DCP ${className}, found ${value instanceof Dataclass ? value.className : typeof value}`);
}

function count(value: unknown, what: string, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    return fail(`${what} is ${String(value)}, not a count`);
  return value;
}

function dims(value: unknown, what: string, fail: Fail): number[] {
  if (!(value instanceof PyTuple)) return fail(`${what} is not a torch.Size`);
  if (value.items.length > MAX_DIMS) return fail(`${what} has ${value.items.length} dimensions`);
  return value.items.map((v, i) => count(v, `${what}[${i}]`, fail));
}

function text(value: unknown, what: string, fail: Fail): string {
  if (typeof value !== 'string') return fail(`${what} is not a string`);
  return value;
}

function entriesOf(value: unknown, what: string, fail: Fail): Array<[unknown, unknown]> {
  if (value === null || value === undefined) return [];
  if (!(value instanceof PyDict)) return fail(`${what} is not a dict`);
  return [...value.entries.values()];
}

function parseIndex(index: Dataclass, fail: Fail): { fqn: string; offsets: number[] | null } {
  const offset = index.fields.get('offset');
  return {
    fqn: text(index.fields.get('fqn'), 'MetadataIndex.fqn', fail),
    offsets: offset === null || offset === undefined ? null : dims(offset, 'MetadataIndex.offset', fail),
  };
}

function parseDtype(properties: Dataclass, fail: Fail): DType {
  const dtype = properties.tupleState ? properties.tupleState[0] : properties.fields.get('dtype');
  if (!(dtype instanceof GlobalRef)) return fail('TensorProperties has no dtype');
  const name = dtype.fullName.replace(/^torch\./, '');
  const known = TORCH_DTYPE[name];
  if (!known) throw new UnsupportedError(`DCP tensors of dtype torch.${name} cannot be read`);
  return known;
}

function parseTensor(meta: Dataclass, fqn: string, fail: Fail): DcpTensorEntry {
  const dtype = parseDtype(instanceOf(meta.fields.get('properties'), 'TensorProperties', fail), fail);
  const shape = dims(meta.fields.get('size'), `${fqn}: size`, fail);
  const list = meta.fields.get('chunks');
  if (!(list instanceof PyList)) return fail(`${fqn}: chunks is not a list`);
  const chunks = list.items.map((item, i) => {
    const chunk = instanceOf(item, 'ChunkStorageMetadata', fail);
    const offsets = dims(chunk.fields.get('offsets'), `${fqn}: chunk ${i} offsets`, fail);
    const sizes = dims(chunk.fields.get('sizes'), `${fqn}: chunk ${i} sizes`, fail);
    if (offsets.length !== shape.length || sizes.length !== shape.length)
      fail(`${fqn}: chunk ${i} has ${offsets.length} dimensions, the tensor ${shape.length}`);
    offsets.forEach((offset, d) => {
      if (offset + (sizes[d] as number) > (shape[d] as number))
        fail(`${fqn}: chunk ${i} reaches past the tensor's size ${shape[d]} in dimension ${d}`);
    });
    return Object.freeze({ offsets, sizes });
  });
  return Object.freeze({ kind: 'tensor', dtype, shape, chunks });
}

/** A file named in the metadata: a plain name inside the checkpoint folder, nothing else. */
function fileName(value: unknown, fail: Fail): string {
  const name = text(value, '_StorageInfo.relative_path', fail);
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name) || name === METADATA_FILE)
    return fail(`_StorageInfo names ${JSON.stringify(name)}, which is not a file in the checkpoint folder`);
  return name;
}

function parseStorageInfo(info: Dataclass, fail: Fail): DcpStorageInfo {
  const transforms = info.fields.get('transform_descriptors');
  if (transforms instanceof PyList && transforms.items.length > 0) {
    throw new UnsupportedError(
      `DCP items stored through transforms (${transforms.items.map((item) => shown(item)).join(', ')}) cannot be read: ckpt reads plain items only`,
    );
  }
  return Object.freeze({
    file: fileName(info.fields.get('relative_path'), fail),
    offset: count(info.fields.get('offset'), '_StorageInfo.offset', fail),
    length: count(info.fields.get('length'), '_StorageInfo.length', fail),
  });
}

function parsePath(value: unknown, fqn: string, fail: Fail): (string | number)[] {
  const items =
    value instanceof PyTuple || value instanceof PyList ? value.items : fail(`${fqn}: its path is not a tuple`);
  if (items.length === 0 || items.length > MAX_PATH_DEPTH) fail(`${fqn}: its path has ${items.length} parts`);
  return items.map((part) =>
    typeof part === 'string' || (typeof part === 'number' && Number.isSafeInteger(part))
      ? part
      : fail(`${fqn}: its path has a part that is neither a name nor an index`),
  );
}

function parseMetadata(root: Dataclass, fail: Fail): ParsedMetadata {
  const entries = new Map<string, DcpEntry>();
  for (const [key, value] of entriesOf(root.fields.get('state_dict_metadata'), 'state_dict_metadata', fail)) {
    const fqn = text(key, 'a state_dict_metadata key', fail);
    const meta = value instanceof Dataclass ? value : fail(`${fqn}: its metadata is not a DCP class`);
    if (meta.className.endsWith('.BytesStorageMetadata')) entries.set(fqn, Object.freeze({ kind: 'bytes' }));
    else entries.set(fqn, parseTensor(instanceOf(meta, 'TensorStorageMetadata', fail), fqn, fail));
  }
  const paths = new Map<string, (string | number)[]>();
  for (const [key, value] of entriesOf(root.fields.get('planner_data'), 'planner_data', fail)) {
    const fqn = text(key, 'a planner_data key', fail);
    if (entries.has(fqn)) paths.set(fqn, parsePath(value, fqn, fail));
  }
  const storage = new Map<string, DcpStorageInfo>();
  for (const [key, value] of entriesOf(root.fields.get('storage_data'), 'storage_data', fail)) {
    const index = parseIndex(instanceOf(key, 'MetadataIndex', fail), fail);
    const info = parseStorageInfo(instanceOf(value, '_StorageInfo', fail), fail);
    storage.set(itemKey(index.fqn, index.offsets), info);
  }
  const version = root.fields.get('version');
  return new ParsedMetadata(entries, paths, storage, typeof version === 'string' ? version : null);
}
