import { basename, dirname, join } from 'node:path';
import {
  bareRecord,
  collectLeaves,
  type Inspection,
  isPlainObject,
  isTensor,
  type Loaded,
  numel,
  parseSize,
  type SaveResult,
  type StateTree,
  type StateValue,
  type StorageBackend,
  type Tensor,
  type TensorInfo,
} from '@ckpt/core';
import { readTorch, TensorStub, type TorchReadOptions } from './read.js';
import { BIN_INDEX_SUFFIX, loadSharded, readIndex, saveSharded } from './shards.js';
import { SAVE_DTYPES, saveTorch, type TorchSaveOptions } from './write.js';

export { BIN_INDEX_SUFFIX } from './shards.js';

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
  return bareRecord([
    ...(typeof version === 'string' ? ([['pytorch-lightning_version', version]] as const) : []),
    ...Object.entries(saved),
  ]);
}

async function load(path: string, options: TorchLoadOptions = {}): Promise<Loaded> {
  if (path.endsWith(BIN_INDEX_SUFFIX)) return loadSharded(path, options, (value) => asTree(value as StateValue));
  const file = readTorch(path, options);
  return {
    state: asTree(file.value),
    metadata: metadataOf(file.value, file.metadata),
    format: 'pytorch',
    zeroCopy: file.zeroCopy,
  };
}

/**
 * Saves with torch.save's format; to a `*.bin.index.json` path, or with a
 * `maxShardSize` the state exceeds, as Hugging Face shards beside an index.
 */
async function save(path: string, state: StateTree, options: TorchSaveOptions = {}): Promise<SaveResult> {
  if (path.endsWith(BIN_INDEX_SUFFIX)) return saveSharded(path, state, options);
  if (options.maxShardSize !== undefined) {
    let bytes = 0;
    for (const value of Object.values(state)) if (isTensor(value)) bytes += value.data.byteLength;
    if (bytes > parseSize(options.maxShardSize)) {
      const base = basename(path).replace(/\.(bin|pt|pth)$/, '');
      return saveSharded(join(dirname(path), `${base}${BIN_INDEX_SUFFIX}`), state, options);
    }
  }
  return saveTorch(path, state, options);
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
  shardIndexName: `pytorch_model${BIN_INDEX_SUFFIX}`,
  dtypes: SAVE_DTYPES,
  detect,
  save,
  load,
  inspect,
});

export type { Tensor };
