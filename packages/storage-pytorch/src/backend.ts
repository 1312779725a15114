import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  collectLeaves,
  FormatError,
  getEntry,
  type Inspection,
  isPlainObject,
  isTensor,
  type Loaded,
  numel,
  type SaveResult,
  type StateTree,
  type StateValue,
  type StorageBackend,
  setEntry,
  type Tensor,
  type TensorInfo,
} from '@ckpt/core';
import { readTorch, TensorStub, type TorchReadOptions } from './read.js';
import { SAVE_DTYPES, saveTorch, type TorchSaveOptions } from './write.js';

/** `pytorch_model.bin.index.json` and friends: a sharded checkpoint's index. */
export const BIN_INDEX_SUFFIX = '.bin.index.json';

export interface TorchLoadOptions extends TorchReadOptions {}

function asTree(value: StateValue): StateTree {
  if (isPlainObject(value)) return value;
  if (value instanceof Map && [...value.keys()].every((k) => typeof k === 'string')) {
    return Object.fromEntries(value) as StateTree;
  }
  return { value } as StateTree;
}

/** Metadata ckpt saved with the file, plus Lightning's version when the file is a Lightning checkpoint. */
function metadataOf(tree: StateValue, saved: Record<string, string>): Record<string, string> {
  const version = isPlainObject(tree) ? tree['pytorch-lightning_version'] : undefined;
  return typeof version === 'string' ? { 'pytorch-lightning_version': version, ...saved } : saved;
}

async function readIndex(path: string): Promise<Map<string, string>> {
  const size = (await stat(path)).size;
  if (size > 100_000_000) throw new FormatError(`shard index is ${size} bytes, too large`, { path });
  let json: { weight_map?: unknown };
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new FormatError(`shard index is not valid JSON: ${(error as Error).message}`, { path });
  }
  if (typeof json?.weight_map !== 'object' || json.weight_map === null)
    throw new FormatError('shard index has no weight_map', { path });
  const map = new Map<string, string>();
  for (const [name, file] of Object.entries(json.weight_map)) {
    if (typeof file !== 'string' || basename(file) !== file || file === '..' || file.includes('\\')) {
      throw new FormatError(
        `shard index maps ${JSON.stringify(name)} to ${JSON.stringify(file)}, which is not a file in the index's folder`,
        { path },
      );
    }
    map.set(name, file);
  }
  return map;
}

async function loadSharded(path: string, options: TorchLoadOptions): Promise<Loaded> {
  const weightMap = await readIndex(path);
  const shards = new Map<string, StateTree>();
  let zeroCopy = true;
  for (const file of new Set(weightMap.values())) {
    const shard = readTorch(join(dirname(path), file), options);
    zeroCopy &&= shard.zeroCopy;
    shards.set(file, asTree(shard.value));
  }
  const state: StateTree = {};
  for (const [name, file] of weightMap) {
    const shard = shards.get(file);
    const value = shard && getEntry(shard, name); // names come from the index: `__proto__` is a name
    if (!isTensor(value))
      throw new FormatError(`shard index puts ${JSON.stringify(name)} in ${file}, which does not hold it`, { path });
    setEntry(state, name, value);
  }
  return { state, metadata: {}, format: 'pytorch', zeroCopy };
}

async function load(path: string, options: TorchLoadOptions = {}): Promise<Loaded> {
  if (path.endsWith(BIN_INDEX_SUFFIX)) return loadSharded(path, options);
  const file = readTorch(path, options);
  return {
    state: asTree(file.value),
    metadata: metadataOf(file.value, file.metadata),
    format: 'pytorch',
    zeroCopy: file.zeroCopy,
  };
}

/** Every tensor stub in a value, with its dotted path (an iterative walk under the node budget). */
function stubs(value: StateValue): Array<[string, TensorStub]> {
  return collectLeaves(value, (v): v is TensorStub => v instanceof TensorStub);
}

async function inspect(path: string, options: TorchReadOptions = {}): Promise<Inspection> {
  const files = path.endsWith(BIN_INDEX_SUFFIX)
    ? [...new Set((await readIndex(path)).values())].map((f) => join(dirname(path), f))
    : [path];
  const tensors: TensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const file of files) {
    const { value, metadata: saved } = readTorch(file, options, true);
    if (file === path) metadata = metadataOf(value, saved);
    for (const [name, stub] of stubs(value)) {
      tensors.push({
        name,
        dtype: stub.dtype,
        shape: [...stub.shape],
        byteLength: stub.byteLength,
        ...(files.length > 1 ? { file } : {}),
      });
    }
  }
  return {
    format: 'pytorch',
    path,
    files,
    tensors,
    parameterCount: tensors.reduce((sum, t) => sum + numel(t.shape), 0),
    tensorBytes: tensors.reduce((sum, t) => sum + t.byteLength, 0),
    metadata,
  };
}

const LEGACY_PREFIX = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/** A torch zip archive (a `PK` header whose first entry is `<folder>/data.pkl`, or TorchScript's first entries), a legacy torch file, or a .bin index. */
function detect(header: Uint8Array): boolean {
  if (header[0] === 0x50 && header[1] === 0x4b && header[2] === 0x03 && header[3] === 0x04 && header.byteLength >= 30) {
    const nameLength = (header[26] as number) | ((header[27] as number) << 8);
    const name = Buffer.from(header.subarray(30, 30 + nameLength)).toString('utf8');
    // torch.save puts data.pkl first; torch.jit.save starts with data/N, code/ or constants.pkl. TorchScript is
    // claimed too, so that reading it says what it is (a program) instead of "no backend reads it".
    return /^[^/]+\/(?:data\.pkl$|constants\.pkl$|code\/|\.data\/|data\/\d+$)/.test(name);
  }
  if (LEGACY_PREFIX.every((b, i) => header[i] === b)) return true;
  const text = Buffer.from(header).toString('utf8');
  return text.trimStart().startsWith('{') && /"weight_map"\s*:\s*\{\s*"(?:[^"\\]|\\.)*"\s*:\s*"[^"]*\.bin"/.test(text);
}

export interface PytorchBackend extends StorageBackend {
  save(path: string, state: StateTree, options?: TorchSaveOptions): Promise<SaveResult>;
  load(path: string, options?: TorchLoadOptions): Promise<Loaded>;
  inspect(path: string, options?: TorchReadOptions): Promise<Inspection>;
}

/** The torch.save storage backend: .pt, .pth, .bin, Lightning .ckpt, sharded .bin indexes. */
export const pytorch: PytorchBackend = Object.freeze({
  name: 'pytorch',
  extensions: [BIN_INDEX_SUFFIX, '.pt', '.pth', '.bin', '.ckpt'],
  dtypes: SAVE_DTYPES,
  detect,
  save: saveTorch,
  load,
  inspect,
});

export type { Tensor };
