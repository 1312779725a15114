import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import {
  assertStateTree,
  bareRecord,
  DETECT_BYTES,
  type EncodedFile,
  type FileDigest,
  FormatError,
  type Inspection,
  InvalidArgumentError,
  inParallel,
  isFlatTensorRecord,
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
  type TensorInfo,
} from '@ckpt/core';
import { type ProgressCallback, writeFileAtomic } from '@ckpt/native';
import { LENGTH_PREFIX_BYTES, MAX_HEADER_BYTES } from './header.js';
import { SafetensorsFile } from './reader.js';
import { formatIndex, INDEX_SUFFIX, isShardOf, parseIndex, parseSize, planShards, shardFileName } from './shards.js';
import { resolveSharedTensors, type TiedWeights } from './shared.js';
import { planFile, SAFETENSORS_DTYPES, writeSafetensors } from './writer.js';

export interface SafetensorsSaveOptions extends SaveOptions {
  /** What to do with tensors that share memory: refuse (default) or store once and re-tie on load. */
  tiedWeights?: TiedWeights;
  /**
   * Split into Hugging Face shards of at most this size (bytes, or "5GB",
   * "2GiB"). One shard is written as a plain file; more get an index. Saving
   * to a `*.safetensors.index.json` path always writes the sharded layout.
   */
  maxShardSize?: number | string;
  /** `__metadata__.format` unless `metadata` sets it (transformers needs one of pt, tf, flax, mlx); false omits it. */
  format?: string | false;
}

/** Metadata keys ckpt keeps for itself. */
const STRUCTURE_KEY = 'ckpt.structure';
const ALIASES_KEY = 'ckpt.aliases';
const RESERVED_PREFIX = 'ckpt.';

function userMetadata(options: SafetensorsSaveOptions): Record<string, string> {
  const metadata: Record<string, string> = Object.create(null); // any key is a key, `__proto__` included
  if (options.format !== false) metadata.format = options.format ?? 'pt';
  for (const [key, value] of Object.entries(options.metadata ?? {})) {
    if (key.startsWith(RESERVED_PREFIX)) {
      throw new InvalidArgumentError(`metadata keys starting with "${RESERVED_PREFIX}" are reserved`, { found: key });
    }
    if (typeof value !== 'string') {
      throw new InvalidArgumentError(`metadata values must be strings; ${JSON.stringify(key)} is ${typeof value}`);
    }
    metadata[key] = value;
  }
  return metadata;
}

/** Progress over several files written side by side, as one total. */
function progressAcross(total: number, onProgress: ProgressCallback | undefined) {
  const done: number[] = [];
  let sum = 0;
  return {
    forFile(i: number): ProgressCallback | undefined {
      if (!onProgress) return undefined;
      done[i] = 0;
      return ({ bytesDone }) => {
        sum += bytesDone - (done[i] as number);
        done[i] = bytesDone;
        onProgress({ bytesDone: sum, bytesTotal: total });
      };
    },
  };
}

/** Shards written at once: each write hashes on a thread of its own, so two per core keep the disk busy. */
const PARALLEL_SHARDS = Math.max(2, Math.min(8, 2 * availableParallelism()));

/** The tensors to store (tied ones once), with the metadata that rebuilds the tree and the ties. */
function planState(state: StateTree, options: SafetensorsSaveOptions) {
  assertStateTree(state);
  const metadata = userMetadata(options);
  const flat = isFlatTensorRecord(state);
  const split = flat ? undefined : splitTree(state);
  const entries: Array<[string, Tensor]> = split ? split.tensors : Object.entries(state as Record<string, Tensor>);
  const { unique, aliases } = resolveSharedTensors(entries, options.tiedWeights ?? 'error');
  const internal: Record<string, string> = Object.create(null);
  if (split) internal[STRUCTURE_KEY] = JSON.stringify(split.structure);
  if (Object.keys(aliases).length > 0) internal[ALIASES_KEY] = JSON.stringify(aliases);
  return { metadata, unique, internal };
}

/** One safetensors file's bytes, the tensors' data as views (for uploads streamed from memory). */
function encode(state: StateTree, options: SafetensorsSaveOptions = {}): EncodedFile {
  const { metadata, unique, internal } = planState(state, options);
  const plan = planFile(unique, { ...metadata, ...internal });
  return { chunks: [plan.head, ...plan.ordered.map(([, t]) => t.data)], size: plan.size };
}

async function save(path: string, state: StateTree, options: SafetensorsSaveOptions = {}): Promise<SaveResult> {
  const { metadata, unique, internal } = planState(state, options);

  const toIndex = path.endsWith(INDEX_SUFFIX);
  const shards = planShards(unique, options.maxShardSize === undefined ? Infinity : parseSize(options.maxShardSize));
  const write = { fsync: options.fsync ?? true };
  if (shards.length === 1 && !toIndex) {
    const file = await writeSafetensors(
      path,
      unique,
      { ...metadata, ...internal },
      { ...write, onProgress: options.onProgress },
    );
    return { ...file, files: [file] };
  }

  const folder = dirname(path);
  const base = basename(path).replace(toIndex ? INDEX_SUFFIX : /\.safetensors$/, '');
  const indexPath = join(folder, `${base}${INDEX_SUFFIX}`);
  const totalSize = unique.reduce((sum, [, t]) => sum + t.data.byteLength, 0);
  const progress = progressAcross(totalSize, options.onProgress);
  const weightMap = new Map<string, string>();
  for (const [i, shard] of shards.entries()) {
    for (const [tensorName] of shard) weightMap.set(tensorName, shardFileName(base, i, shards.length));
  }
  // Shards are written side by side, each hashed as it is written.
  const files: FileDigest[] = await inParallel(
    shards.map((shard, i) => () => {
      const path = join(folder, shardFileName(base, i, shards.length));
      return writeSafetensors(path, shard, metadata, { ...write, onProgress: progress.forFile(i) });
    }),
    PARALLEL_SHARDS,
  );
  // The index goes last: a reader that finds it finds every shard it names.
  const indexText = formatIndex({ total_size: totalSize, ...metadata, ...internal }, weightMap);
  const index = await writeFileAtomic(indexPath, [Buffer.from(indexText, 'utf8')], write);
  files.push({ path: indexPath, ...index });
  const current = new Set(files.map((f) => basename(f.path)));
  for (const stale of (await readdir(folder)).filter((f) => isShardOf(base, f) && !current.has(f))) {
    await rm(join(folder, stale), { force: true });
  }
  return { path: indexPath, size: index.size, sha256: index.sha256, files };
}

function parseJsonMetadata(value: string | undefined, key: string, path: string): JsonValue | undefined {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value) as JsonValue;
  } catch {
    throw new FormatError(`metadata ${key} is not valid JSON`, { path });
  }
}

/** Builds the loaded state: re-ties aliases, rebuilds the structure when there is one. */
function assemble(tensors: Map<string, Tensor>, metadata: Record<string, string>, path: string) {
  const aliases = parseJsonMetadata(metadata[ALIASES_KEY], ALIASES_KEY, path) ?? {};
  for (const [alias, kept] of Object.entries(aliases)) {
    const target = typeof kept === 'string' ? tensors.get(kept) : undefined;
    if (!target)
      throw new FormatError(`tied weight ${JSON.stringify(alias)} refers to a tensor the file lacks`, { path });
    tensors.set(alias, target);
  }
  const structure = parseJsonMetadata(metadata[STRUCTURE_KEY], STRUCTURE_KEY, path);
  const state =
    structure === undefined ? Object.fromEntries(tensors) : joinTree(structure, (name) => tensors.get(name));
  const user = bareRecord(Object.entries(metadata).filter(([k]) => !k.startsWith(RESERVED_PREFIX)));
  return { state, metadata: user };
}

async function readIndex(path: string) {
  const size = (await stat(path)).size;
  if (size > MAX_HEADER_BYTES)
    throw new FormatError(`shard index is ${size} bytes, over the ${MAX_HEADER_BYTES}-byte limit`, { path });
  const index = parseIndex(await readFile(path, 'utf8'), path);
  const metadata = bareRecord(
    Object.entries(index.metadata).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
  return { ...index, metadata };
}

/** Opens every shard an index names, checking the index and the shards agree. */
async function openShards(indexPath: string, copy: boolean) {
  const index = await readIndex(indexPath);
  const folder = dirname(indexPath);
  const files = new Map<string, SafetensorsFile>();
  for (const file of new Set(index.weightMap.values()))
    files.set(file, await SafetensorsFile.open(join(folder, file), { copy }));
  for (const [name, file] of index.weightMap) {
    if (!files.get(file)?.has(name)) {
      throw new FormatError(`shard index puts ${JSON.stringify(name)} in ${file}, which does not hold it`, {
        path: indexPath,
      });
    }
  }
  for (const [file, shard] of files) {
    const stray = shard.names.find((name) => index.weightMap.get(name) !== file);
    if (stray !== undefined) {
      throw new FormatError(`shard ${file} holds ${JSON.stringify(stray)}, which the index does not list there`, {
        path: indexPath,
      });
    }
  }
  return { index, files };
}

async function load(path: string, options: LoadOptions = {}): Promise<Loaded> {
  const copy = options.copy ?? false;
  if (path.endsWith(INDEX_SUFFIX)) {
    const { index, files } = await openShards(path, copy);
    try {
      const tensors = new Map<string, Tensor>();
      for (const [name, file] of index.weightMap) tensors.set(name, (files.get(file) as SafetensorsFile).tensor(name));
      const first = files.values().next().value as SafetensorsFile | undefined;
      const { state, metadata } = assemble(tensors, { ...first?.metadata, ...index.metadata }, path);
      return { state, metadata, format: 'safetensors', zeroCopy: first?.zeroCopy ?? !copy };
    } finally {
      for (const file of files.values()) file.close();
    }
  }
  const file = await SafetensorsFile.open(path, { copy });
  try {
    const tensors = new Map(file.names.map((name) => [name, file.tensor(name)]));
    const { state, metadata } = assemble(tensors, { ...file.metadata }, path);
    return { state, metadata, format: 'safetensors', zeroCopy: file.zeroCopy };
  } finally {
    file.close();
  }
}

function summarize(path: string, files: string[], tensors: TensorInfo[], metadata: Record<string, string>): Inspection {
  return {
    format: 'safetensors',
    path,
    files,
    tensors,
    parameterCount: tensors.reduce((sum, t) => sum + numel(t.shape), 0),
    tensorBytes: tensors.reduce((sum, t) => sum + t.byteLength, 0),
    metadata: Object.fromEntries(Object.entries(metadata).filter(([k]) => !k.startsWith(RESERVED_PREFIX))),
  };
}

async function inspect(path: string): Promise<Inspection> {
  if (path.endsWith(INDEX_SUFFIX)) {
    const { index, files } = await openShards(path, false);
    const tensors: TensorInfo[] = [];
    for (const [file, shard] of files) {
      for (const t of shard.tensors)
        tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.byteLength, file });
    }
    const first = files.values().next().value as SafetensorsFile | undefined;
    return summarize(
      path,
      [...files.values()].map((f) => f.path),
      tensors,
      { ...first?.metadata, ...index.metadata },
    );
  }
  const file = await SafetensorsFile.open(path);
  const tensors = file.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.byteLength }));
  return summarize(path, [path], tensors, file.metadata);
}

const INDEX_PATTERN = /"weight_map"\s*:\s*\{\s*"(?:[^"\\]|\\.)*"\s*:\s*"[^"]*\.safetensors"/;

/** A safetensors file (plausible header length, then a JSON object) or a safetensors shard index. */
function detect(header: Uint8Array): boolean {
  if (header.byteLength > LENGTH_PREFIX_BYTES) {
    const length = new DataView(header.buffer, header.byteOffset, 8).getBigUint64(0, true);
    if (length >= 2n && length <= BigInt(MAX_HEADER_BYTES)) {
      let i = LENGTH_PREFIX_BYTES;
      while (
        i < header.byteLength &&
        (header[i] === 0x20 || header[i] === 0x0a || header[i] === 0x0d || header[i] === 0x09)
      )
        i++;
      if (header[i] === 0x7b) return true;
    }
  }
  const text = Buffer.from(header.subarray(0, DETECT_BYTES)).toString('utf8');
  return text.trimStart().startsWith('{') && INDEX_PATTERN.test(text);
}

export interface SafetensorsBackend extends StorageBackend {
  encode(state: StateTree, options?: SafetensorsSaveOptions): EncodedFile;
  save(path: string, state: StateTree, options?: SafetensorsSaveOptions): Promise<SaveResult>;
}

/** The safetensors storage backend. */
export const safetensors: SafetensorsBackend = Object.freeze({
  name: 'safetensors',
  extensions: [INDEX_SUFFIX, '.safetensors'],
  shardIndexName: `model${INDEX_SUFFIX}`,
  dtypes: SAFETENSORS_DTYPES,
  detect,
  encode,
  save,
  load,
  inspect,
});
