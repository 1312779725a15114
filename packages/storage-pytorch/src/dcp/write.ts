/**
 * Writing torch.distributed.checkpoint (DCP) folders that torch's
 * `dcp.load` reads, from one process or from N ranks with no coordinator:
 *
 * 1. each rank writes its items to `__<rank>_0.distcp` (each item a
 *    torch.save archive, as DCP's FileSystemWriter writes them), atomically;
 * 2. then a small manifest of what it wrote, `.ckpt-dcp-rank-<r>-of-<n>.json`;
 * 3. a rank that finds all n manifests checks that they fit together and
 *    publishes `.metadata` with an exclusive link: it exists only once every
 *    rank's part is on disk, and only one rank makes it.
 *
 * Without `.metadata` there is no checkpoint to load, so a rank that dies
 * leaves nothing a reader would take for complete.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  ConflictError,
  dtypeInfo,
  FormatError,
  InvalidArgumentError,
  isPlainObject,
  isTensor,
  type StateValue,
  shown,
  type Tensor,
  UnsupportedError,
} from '@ckpt/core';
import { crc32Many, syncFolder, writeFileAtomic } from '@ckpt/native';
import { SAVE_DTYPES, torchArchive } from '../write.js';
import { zipChunks } from '../zip/writer.js';
import { checkDisjoint, volume } from './boxes.js';
import type { DcpChunk, DcpEntry, DcpTensorEntry } from './metadata.js';
import { METADATA_FILE } from './metadata.js';
import { type PlannedItem, pickleDcpMetadata } from './metadata-pickle.js';

/** One rank's part of a tensor sharded across ranks: its box in the whole tensor. */
export class DcpShard {
  readonly offsets: readonly number[];
  readonly shape: readonly number[];
  constructor(
    readonly tensor: Tensor,
    placement: { offsets: readonly number[]; shape: readonly number[] },
  ) {
    const { offsets, shape } = placement;
    const fits =
      isTensor(tensor) &&
      offsets.length === tensor.shape.length &&
      shape.length === tensor.shape.length &&
      offsets.every(
        (o, d) =>
          Number.isSafeInteger(o) &&
          o >= 0 &&
          Number.isSafeInteger(shape[d]) &&
          o + (tensor.shape[d] as number) <= (shape[d] as number),
      );
    if (!fits)
      throw new InvalidArgumentError(
        `a shard of shape [${tensor.shape?.join(', ')}] at [${offsets.join(', ')}] does not fit in [${shape.join(', ')}]`,
      );
    this.offsets = Object.freeze([...offsets]);
    this.shape = Object.freeze([...shape]);
    Object.freeze(this);
  }
}

export interface DcpSaveOptions {
  /** This process's rank (default 0). */
  rank?: number;
  /** How many ranks write parts of this checkpoint (default 1). */
  worldSize?: number;
  /**
   * Names this attempt: every rank passes the same one (a run id and step,
   * say) so that parts left by an earlier, failed attempt in the same folder
   * are never mixed in. Default: ''.
   */
  saveId?: string;
  /** How long a rank waits for the others before it gives up (ms, default 600000); 0 returns at once. */
  timeoutMs?: number;
  /** Flush files to disk before they count (default true). */
  fsync?: boolean;
}

export interface DcpSaveResult {
  /** The rank's data file. */
  file: { path: string; size: number; sha256: string };
  /** Whether `.metadata` exists (the checkpoint is complete) when the call returns. */
  committed: boolean;
  /** Whether this rank published `.metadata`. */
  committer: boolean;
}

const MANIFEST_VERSION = 1;
const FAILED_FILE = '.ckpt-dcp-failed.json';
const MAX_MANIFEST_BYTES = 1 << 28;
/** How often a waiting rank looks for the commit: short, as a commit usually follows within milliseconds. */
const POLL_MS = 10;

interface ManifestItem {
  fqn: string;
  path: (string | number)[];
  kind: 'tensor' | 'bytes';
  dtype?: string;
  shape?: number[];
  offsets?: number[];
  sizes?: number[];
  offset: number;
  length: number;
}

interface Manifest {
  version: number;
  saveId: string;
  rank: number;
  worldSize: number;
  file: string;
  items: ManifestItem[];
}

const manifestName = (rank: number, worldSize: number) => `.ckpt-dcp-rank-${rank}-of-${worldSize}.json`;
const dataName = (rank: number) => `__${rank}_0.distcp`;

interface Leaf {
  path: (string | number)[];
  value: StateValue | DcpShard;
}

/** Whether DCP keeps walking into a list: when it holds a tensor or a container that does. */
function walksInto(list: readonly unknown[]): boolean {
  return list.some(
    (v) => isTensor(v) || v instanceof DcpShard || isPlainObject(v) || (Array.isArray(v) && walksInto(v as unknown[])),
  );
}

/** The state's leaves with their paths, flattened as DCP's flatten_state_dict does (iteratively). */
function leavesOf(state: Record<string, unknown>): Leaf[] {
  const leaves: Leaf[] = [];
  const stack: Leaf[] = [{ path: [], value: state as StateValue }];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const { path, value } = stack.pop() as Leaf;
    const isBranch = isPlainObject(value) || (Array.isArray(value) && walksInto(value) && path.length > 0);
    if (!isBranch || isTensor(value)) {
      leaves.push({ path, value });
      continue;
    }
    if (seen.has(value as object)) throw new InvalidArgumentError(`the state refers to itself at ${path.join('.')}`);
    seen.add(value as object);
    const children: Array<[string | number, unknown]> = Array.isArray(value)
      ? value.map((v, i) => [i, v])
      : Object.entries(value as object);
    for (const [key, child] of children.reverse()) stack.push({ path: [...path, key], value: child as StateValue });
  }
  return leaves;
}

function checkDtype(fqn: string, tensor: Tensor): void {
  if (dtypeInfo(tensor.dtype).bits % 8 !== 0 || !SAVE_DTYPES.includes(tensor.dtype))
    throw new UnsupportedError(`${fqn}: ${tensor.dtype} tensors cannot be written to a DCP checkpoint`);
}

/** Writes this rank's items and manifest, then publishes the checkpoint if every rank's part is there. */
export async function saveDcp(
  folder: string,
  state: Record<string, unknown>,
  options: DcpSaveOptions = {},
): Promise<DcpSaveResult> {
  const rank = options.rank ?? 0;
  const worldSize = options.worldSize ?? 1;
  const saveId = options.saveId ?? '';
  const fsync = options.fsync ?? true;
  if (!Number.isSafeInteger(worldSize) || worldSize < 1 || worldSize > 1_000_000)
    throw new InvalidArgumentError(`worldSize must be a positive integer, got ${String(worldSize)}`);
  if (!Number.isSafeInteger(rank) || rank < 0 || rank >= worldSize)
    throw new InvalidArgumentError(`rank must be an integer in [0, ${worldSize}), got ${String(rank)}`);
  if (!isPlainObject(state)) throw new InvalidArgumentError('the state must be a plain object at the top');
  mkdirSync(folder, { recursive: true });
  if (existsSync(join(folder, METADATA_FILE)))
    throw new ConflictError(`${folder} already holds a DCP checkpoint (${METADATA_FILE}): refused to write over it`, {
      path: folder,
    });

  // 1. The data file: one torch.save archive per item, back to back (their CRCs in one pass across the cores).
  const leaves = leavesOf(state);
  const archives = leaves.map(({ path, value }) => {
    const fqn = path.join('.');
    const shard = value instanceof DcpShard ? value : undefined;
    const tensor = shard?.tensor ?? (isTensor(value) ? value : undefined);
    if (tensor) checkDtype(fqn, tensor);
    return { fqn, path, shard, tensor, records: torchArchive((tensor ?? value) as StateValue, 'archive') };
  });
  const crcs = await crc32Many(archives.flatMap((a) => a.records.map((r) => r.data)));
  const chunks: Uint8Array[] = [];
  const items: ManifestItem[] = [];
  let at = 0;
  let crcAt = 0;
  for (const { fqn, path, shard, tensor, records } of archives) {
    const bytes = zipChunks(records, crcs.slice(crcAt, crcAt + records.length));
    crcAt += records.length;
    const length = bytes.reduce((sum, b) => sum + b.byteLength, 0);
    chunks.push(...bytes);
    items.push({
      fqn,
      path,
      kind: tensor ? 'tensor' : 'bytes',
      ...(tensor
        ? {
            dtype: tensor.dtype,
            shape: [...(shard?.shape ?? tensor.shape)],
            offsets: [...(shard?.offsets ?? tensor.shape.map(() => 0))],
            sizes: [...tensor.shape],
          }
        : {}),
      offset: at,
      length,
    });
    at += length;
  }
  const dataPath = join(folder, dataName(rank));
  const written = await writeFileAtomic(dataPath, chunks, { fsync });
  // 2. The manifest, once the data is durable.
  const manifest: Manifest = { version: MANIFEST_VERSION, saveId, rank, worldSize, file: dataName(rank), items };
  await writeFileAtomic(join(folder, manifestName(rank, worldSize)), [Buffer.from(JSON.stringify(manifest))], {
    fsync,
  });
  const file = { path: dataPath, size: written.size, sha256: written.sha256 };
  // 3. Publish when every part is there; else wait for whoever does.
  const committer = await tryCommit(folder, worldSize, saveId, fsync);
  if (committer || options.timeoutMs === 0) return { file, committed: committer || isCommitted(folder), committer };
  const published = await waitForCommit(folder, worldSize, saveId, fsync, options.timeoutMs ?? 600_000);
  return { file, committed: true, committer: published };
}

function isCommitted(folder: string): boolean {
  const failed = readFailure(folder);
  if (failed) throw failed;
  return existsSync(join(folder, METADATA_FILE));
}

function readFailure(folder: string): Error | undefined {
  try {
    const path = join(folder, FAILED_FILE);
    if (statSync(path).size > 1 << 20) return new ConflictError(`${FAILED_FILE} is in ${folder}`, { path: folder });
    const reason = JSON.parse(readFileSync(path, 'utf8')) as { message?: unknown } | null;
    return new ConflictError(`the DCP checkpoint in ${folder} cannot be completed: ${shown(reason?.message)}`, {
      path: folder,
    });
  } catch {
    return undefined;
  }
}

/** Waits until the checkpoint is published; true when this rank published it (the others came later). */
async function waitForCommit(
  folder: string,
  worldSize: number,
  saveId: string,
  fsync: boolean,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!isCommitted(folder)) {
    // A rank that wrote its manifest after this one looked may have died before committing: try again.
    if (await tryCommit(folder, worldSize, saveId, fsync)) return true;
    if (Date.now() > deadline) throw notCompleted(folder, worldSize, saveId, timeoutMs);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return false;
}

/** Why a checkpoint did not complete: the ranks with no part, or parts left by another attempt. */
function notCompleted(folder: string, worldSize: number, saveId: string, timeoutMs: number): ConflictError {
  const missing = missingRanks(folder, worldSize);
  const reason =
    missing.length > 0
      ? `no part from rank${missing.length === 1 ? '' : 's'} ${missing.join(', ')}`
      : `parts in the folder belong to another attempt (saveId other than ${JSON.stringify(saveId)})`;
  return new ConflictError(`the DCP checkpoint in ${folder} was not completed within ${timeoutMs} ms: ${reason}`, {
    path: folder,
  });
}

function missingRanks(folder: string, worldSize: number): number[] {
  const present = new Set(readdirSync(folder));
  const missing: number[] = [];
  for (let r = 0; r < worldSize && missing.length < 20; r++)
    if (!present.has(manifestName(r, worldSize))) missing.push(r);
  return missing;
}

/** Publishes `.metadata` when every rank's manifest is present; true when this call did. */
async function tryCommit(folder: string, worldSize: number, saveId: string, fsync: boolean): Promise<boolean> {
  if (missingRanks(folder, worldSize).length > 0 || existsSync(join(folder, METADATA_FILE))) return false;
  const manifests: Manifest[] = [];
  for (let r = 0; r < worldSize; r++) {
    const manifest = readManifest(folder, r, worldSize);
    if (!manifest) return false; // removed under us: another rank committed
    if (manifest.saveId !== saveId) return false; // a part from another attempt: not ours to commit
    manifests.push(manifest);
  }
  let metadata: Uint8Array;
  try {
    metadata = buildMetadata(manifests, folder);
  } catch (error) {
    await writeFileAtomic(
      join(folder, FAILED_FILE),
      [Buffer.from(JSON.stringify({ message: String((error as Error).message) }))],
      {
        fsync,
      },
    );
    throw error;
  }
  const temporary = join(folder, `${METADATA_FILE}.${randomBytes(6).toString('hex')}.ckpt-tmp`);
  await writeFileAtomic(temporary, [metadata], { fsync });
  let published = true;
  try {
    linkSync(temporary, join(folder, METADATA_FILE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    published = false;
  } finally {
    unlinkSync(temporary);
  }
  if (fsync) await syncFolder(folder);
  return published;
}

function readManifest(folder: string, rank: number, worldSize: number): Manifest | undefined {
  const path = join(folder, manifestName(rank, worldSize));
  let text: string;
  try {
    if (statSync(path).size > MAX_MANIFEST_BYTES) throw new FormatError('a DCP rank manifest is too large', { path });
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new FormatError('a DCP rank manifest is not JSON', { path });
  }
  return checkManifest(parsed, rank, worldSize, path);
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isDims = (v: unknown): v is number[] => Array.isArray(v) && v.length <= 64 && v.every(isCount);

/** Checks a manifest's every field: it is a file like any other. */
function checkManifest(value: unknown, rank: number, worldSize: number, path: string): Manifest {
  const bad = (what: string) => new FormatError(`a DCP rank manifest is malformed: ${what}`, { path });
  if (!isPlainObject(value)) throw bad('not an object');
  const m = value as Record<string, unknown>;
  if (m.version !== MANIFEST_VERSION) throw bad(`version ${String(m.version)}`);
  if (m.rank !== rank || m.worldSize !== worldSize) throw bad('its rank or world size is not its name');
  if (typeof m.saveId !== 'string') throw bad('saveId');
  if (m.file !== dataName(rank)) throw bad('file');
  if (!Array.isArray(m.items)) throw bad('items');
  for (const item of m.items as unknown[]) {
    if (!isPlainObject(item)) throw bad('an item is not an object');
    const i = item as Record<string, unknown>;
    if (typeof i.fqn !== 'string' || !isCount(i.offset) || !isCount(i.length)) throw bad('an item');
    if (!Array.isArray(i.path) || !i.path.every((p) => typeof p === 'string' || isCount(p))) throw bad('a path');
    if (i.kind === 'tensor') {
      if (typeof i.dtype !== 'string' || !isDims(i.shape) || !isDims(i.offsets) || !isDims(i.sizes))
        throw bad('a tensor');
      const dims = i.shape.length;
      if (i.offsets.length !== dims || i.sizes.length !== dims) throw bad('a tensor');
      const sizes = i.sizes as number[];
      const shape = i.shape as number[];
      if (i.offsets.some((o, d) => o + (sizes[d] as number) > (shape[d] as number))) throw bad('a chunk');
    } else if (i.kind !== 'bytes') throw bad('an item kind');
  }
  return m as unknown as Manifest;
}

/** Joins the manifests into `.metadata`: each name once, each chunk once (the lowest rank's copy). */
function buildMetadata(manifests: readonly Manifest[], folder: string): Uint8Array {
  const entries = new Map<string, DcpEntry>();
  const paths = new Map<string, (string | number)[]>();
  const items = new Map<string, PlannedItem>();
  for (const manifest of manifests) {
    for (const item of manifest.items) {
      const known = entries.get(item.fqn);
      if (!known) {
        entries.set(
          item.fqn,
          item.kind === 'tensor'
            ? { kind: 'tensor', dtype: item.dtype as DcpTensorEntry['dtype'], shape: item.shape ?? [], chunks: [] }
            : { kind: 'bytes' },
        );
        paths.set(item.fqn, item.path);
      } else if (
        known.kind !== item.kind ||
        (known.kind === 'tensor' && (known.dtype !== item.dtype || known.shape.join() !== item.shape?.join()))
      ) {
        throw new ConflictError(`ranks disagree on what ${item.fqn} is (its kind, dtype or shape)`, { path: folder });
      }
      const offsets = item.kind === 'tensor' ? (item.offsets ?? []) : null;
      const key = JSON.stringify([item.fqn, offsets]);
      if (items.has(key)) continue;
      items.set(key, {
        fqn: item.fqn,
        offsets,
        storage: { file: manifest.file, offset: item.offset, length: item.length },
      });
      const entry = entries.get(item.fqn);
      if (entry?.kind === 'tensor')
        (entry.chunks as DcpChunk[]).push({ offsets: offsets ?? [], sizes: item.sizes ?? [] });
    }
  }
  for (const [fqn, entry] of entries) {
    if (entry.kind !== 'tensor') continue;
    checkDisjoint(fqn, entry.chunks, folder);
    const covered = entry.chunks.reduce((sum, c) => sum + volume(c.sizes), 0);
    if (covered !== volume(entry.shape))
      throw new ConflictError(`the ranks' parts of ${fqn} cover ${covered} of its ${volume(entry.shape)} elements`, {
        path: folder,
      });
  }
  return pickleDcpMetadata(entries, paths, [...items.values()]);
}
