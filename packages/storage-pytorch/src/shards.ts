/**
 * Sharded torch checkpoints in the Hugging Face layout, as transformers
 * writes them with `safe_serialization=False`: `pytorch_model-00001-of-00003.bin`
 * and so on (each a torch.save zip of a flat state dict), plus
 * `pytorch_model.bin.index.json` mapping each tensor to its file.
 */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import {
  FormatError,
  formatShardIndex,
  getEntry,
  InvalidArgumentError,
  inParallel,
  isShardOf,
  isTensor,
  type Loaded,
  parseShardIndex,
  parseSize,
  planShards,
  type SaveResult,
  type StateTree,
  setEntry,
  shardFileName,
  type Tensor,
} from '@ckpt/core';
import { writeFileAtomic } from '@ckpt/native';
import { readTorch, type TorchReadOptions } from './read.js';
import { saveTorch, type TorchSaveOptions } from './write.js';

/** `pytorch_model.bin.index.json` and friends: a sharded checkpoint's index. */
export const BIN_INDEX_SUFFIX = '.bin.index.json';
const EXTENSION = '.bin';
/** Shards written at once: each write hashes on a thread of its own. */
const PARALLEL_SHARDS = Math.max(2, Math.min(8, 2 * availableParallelism()));
const MAX_INDEX_BYTES = 100_000_000;

/** The index's weight map: every shard a plain file name in the index's folder. */
export async function readIndex(path: string): Promise<Map<string, string>> {
  const size = (await stat(path)).size;
  if (size > MAX_INDEX_BYTES) throw new FormatError(`shard index is ${size} bytes, too large`, { path });
  return parseShardIndex(await readFile(path, 'utf8'), path).weightMap;
}

/** A flat state dict from the shards an index names. */
export async function loadSharded(
  path: string,
  options: TorchReadOptions,
  asTree: (value: unknown) => StateTree,
): Promise<Loaded> {
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

/**
 * Writes a flat state dict as shards of at most `maxShardSize` bytes beside
 * the index at `path` (`…/pytorch_model.bin.index.json`), side by side; the
 * index goes last, so a reader that finds it finds every shard it names.
 */
export async function saveSharded(path: string, state: StateTree, options: TorchSaveOptions): Promise<SaveResult> {
  const entries = Object.entries(state);
  if (!entries.every(([, value]) => isTensor(value))) {
    throw new InvalidArgumentError('a sharded .bin checkpoint holds a flat state dict of tensors', {
      expected: "{ 'layer.weight': tensor, … } (optimizer states and other values: save unsharded)",
    });
  }
  const tensors = entries as Array<[string, Tensor]>;
  const maxShardSize = options.maxShardSize === undefined ? Number.POSITIVE_INFINITY : parseSize(options.maxShardSize);
  const shards = planShards(tensors, maxShardSize);
  const folder = dirname(path);
  const base = basename(path).slice(0, -BIN_INDEX_SUFFIX.length);
  if (base === '') throw new InvalidArgumentError(`${path} names no checkpoint before ${BIN_INDEX_SUFFIX}`);
  const write = { fsync: options.fsync ?? true, ...(options.metadata ? { metadata: options.metadata } : {}) };
  const names = shards.map((_, i) => shardFileName(base, i, shards.length, EXTENSION));
  const files = await inParallel(
    shards.map((shard, i) => async () => {
      const saved = await saveTorch(join(folder, names[i] as string), Object.fromEntries(shard), write);
      return { path: saved.path, size: saved.size, sha256: saved.sha256 };
    }),
    PARALLEL_SHARDS,
  );
  const weightMap = new Map<string, string>();
  for (const [i, shard] of shards.entries()) for (const [name] of shard) weightMap.set(name, names[i] as string);
  const totalSize = tensors.reduce((sum, [, t]) => sum + t.data.byteLength, 0);
  const text = formatShardIndex({ total_size: totalSize }, weightMap);
  const index = await writeFileAtomic(path, [Buffer.from(text, 'utf8')], { fsync: write.fsync });
  files.push({ path, ...index });
  const current = new Set(names);
  for (const stale of (await readdir(folder)).filter((f) => isShardOf(base, f, EXTENSION) && !current.has(f))) {
    await rm(join(folder, stale), { force: true });
  }
  return { path, size: index.size, sha256: index.sha256, files };
}
