/**
 * Reconciling the index with the folder when a manager opens: what a crash,
 * a killed process or a person with `rm` may have left behind.
 */
import { lstat, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { type FolderListing, sha256File, sha256Files, TEMP_SUFFIX } from '@ckpt/native';
import { FormatError, shown } from '../errors.js';
import type { StorageBackend } from '../storage.js';
import { Confinement } from './confine.js';
import { abandonedStagingDirs, ownerAlive, removeEntry } from './files.js';
import { stagingOf, whyAbandoned } from './gathering.js';
import type { Gather, IndexFile, PendingSave, StoredFile, StoredRecord } from './record.js';
import { MAX_SET_FILES } from './sets.js';

export interface RecoveryReport {
  /** Saves whose writer died after writing the file but before committing it: committed now, with a fresh digest. */
  rolledForward: string[];
  /** Saves whose writer died before the file was complete: their intents are dropped. */
  dropped: string[];
  /** Records whose file is gone. */
  missing: string[];
  /** Records whose file has the wrong size. */
  corrupted: string[];
  /** Temporaries, abandoned staging folders and unfinished deletions removed (read-only: that a writer would remove). */
  removed: string[];
  /** Checkpoint-like files without a record (see `adoptOrphans`). */
  orphans: string[];
  /** Orphans adopted, with a digest computed now. */
  adopted: string[];
  /** Index or journal entries refused by their checks (`where: why`), kept in the index's `rejected` list. */
  rejected: string[];
}

export interface RecoveryContext {
  folder: string;
  backend: StorageBackend;
  /** File name endings that are checkpoints in this experiment. */
  extensions: string[];
  /** Names in the folder that are not checkpoints (index, best file, sidecars). */
  reserved: Set<string>;
  adoptOrphans: boolean;
  /** Change nothing on disk: report what a writer would remove. */
  readOnly: boolean;
  fsync: boolean;
  experiment: string;
  model: string;
  /** How long a multi-process save may take before it is abandoned. */
  gatherTimeoutMs: number;
  now: () => Date;
}

/**
 * Makes the index and the folder agree. Runs with the index lock held;
 * `listing` is the folder as listed (`scanFolder`) under that lock.
 */
export async function reconcile(
  index: IndexFile,
  context: RecoveryContext,
  listing: FolderListing,
): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    rolledForward: [],
    dropped: [],
    missing: [],
    corrupted: [],
    removed: [],
    orphans: [],
    adopted: [],
    rejected: (index.rejected ?? []).map((r) => `${r.where}: ${r.reason}`),
  };
  const { folder } = context;
  const confined = new Confinement(folder);
  const gone = new Set<string>(); // listed, then removed here
  /** Removes a leftover (`how`: a file, a link or an emptied folder by default; a staging tree). */
  const remove = async (path: string, what: string, how: (path: string) => Promise<void> = removeEntry) => {
    report.removed.push(what);
    gone.add(what);
    if (!context.readOnly) await how(path);
  };
  if (!context.readOnly) await settlePending(index, context, confined, report);
  for (const record of index.checkpoints) checkFilePresent(record, confined, listing, report);

  for (const file of index.deleting) {
    try {
      const path = confined.removable(file);
      if (path !== undefined) await remove(path, file); // a file, or a sharded checkpoint's emptied folder
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      report.rejected.push(`deleting ${file}: ${error.message}`);
    }
  }
  if (!context.readOnly) index.deleting = [];

  const gathering = new Set(index.pending.filter((p) => p.gather).map((p) => p.record.id));
  for (const dir of await abandonedStagingDirs(folder, gathering)) {
    await remove(dir, relative(folder, dir), (path) => rm(path, { recursive: true, force: true })); // ckpt's own
  }

  const claimed = new Set(index.pending.map((p) => p.record.file)); // saves still running (settled above)
  for (const name of listing.names) {
    if (!name.endsWith(TEMP_SUFFIX) || claimed.has(temporaryTarget(name))) continue;
    if (await recentlyChanged(join(folder, name))) continue; // maybe another process's write in progress
    await remove(join(folder, name), name); // a link is removed, not its target
  }

  const known = new Set<string>();
  for (const record of index.checkpoints) known.add(record.file);
  for (const save of index.pending) known.add(save.record.file);
  for (const name of listing.names) {
    if (known.has(name) || gone.has(name) || context.reserved.has(name) || name.startsWith('.')) continue;
    if (!context.extensions.some((ext) => name.endsWith(ext))) continue;
    if (listing.kind(name) !== 'file') continue; // links are never adopted
    report.orphans.push(name);
  }
  report.orphans.sort();
  if (context.adoptOrphans && !context.readOnly) await adopt(index, context, report);
  return report;
}

/**
 * Saves announced by a process that is gone: the backends write atomically,
 * so a file under the final name is complete; it is committed with its
 * digest computed now. Without a file (or with one the backend cannot read),
 * the intent is dropped.
 */
async function settlePending(
  index: IndexFile,
  context: RecoveryContext,
  confined: Confinement,
  report: RecoveryReport,
): Promise<void> {
  const still: PendingSave[] = [];
  for (const save of index.pending) {
    if (save.gather) {
      if (await settleGathering(save, save.gather, index, context, confined, report)) still.push(save);
      continue;
    }
    if (ownerAlive(save.owner)) {
      still.push(save);
      continue;
    }
    const { record } = save;
    let info: { path: string; size: number } | undefined;
    try {
      info = confined.stat(record.file);
    } catch (error) {
      if (!(error instanceof FormatError)) throw error; // its file leads outside the folder: never committed
    }
    const readable =
      info !== undefined && (record.compression !== undefined || (await inspects(context.backend, info.path)));
    if (!info || !readable) {
      report.dropped.push(record.id);
      continue;
    }
    if (record.files) {
      if (!(await rollSetForward(record, info.path, index))) {
        report.dropped.push(record.id); // its index is not a plain file of the folder
        continue;
      }
    } else {
      index.checkpoints.push({ ...record, size: info.size, sha256: await sha256File(info.path), status: 'ok' });
    }
    report.rolledForward.push(record.id);
  }
  index.pending = still;
}

/**
 * Commits a sharded save whose folder is in place (it is renamed only when
 * complete): its files are the set, with digests computed now. False when
 * its index is not a plain file of the folder.
 */
async function rollSetForward(record: StoredRecord, indexPath: string, index: IndexFile): Promise<boolean> {
  const files = await setOnDisk(dirname(indexPath), dirname(record.file));
  const own = files.find((f) => f.file === record.file);
  if (!own) return false;
  const ordered = [...files.filter((f) => f !== own), own];
  const size = ordered.reduce((sum, f) => sum + f.size, 0);
  index.checkpoints.push({ ...record, size, sha256: own.sha256, files: ordered, status: 'ok' });
  return true;
}

/**
 * A multi-process save: committed if its set is in place (its committer died
 * after the rename), dropped with its staging folder when it can never
 * finish, kept while its ranks may still be writing. True: keep it.
 */
async function settleGathering(
  save: PendingSave,
  gather: Gather,
  index: IndexFile,
  context: RecoveryContext,
  confined: Confinement,
  report: RecoveryReport,
): Promise<boolean> {
  const { record } = save;
  let info: { path: string } | undefined;
  try {
    info = confined.stat(record.file);
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
  }
  if (info && (await inspects(context.backend, info.path)) && (await rollSetForward(record, info.path, index))) {
    report.rolledForward.push(record.id);
  } else {
    const complete = gather.parts.length === gather.worldSize;
    const why = complete
      ? gather.ranks.every((r) => !ownerAlive(r.owner)) && 'every rank ended before the commit'
      : whyAbandoned(gather, context.now(), context.gatherTimeoutMs);
    if (!why) return true;
    report.dropped.push(record.id);
  }
  await rm(stagingOf(context, record.id), { recursive: true, force: true });
  return false;
}

/** The plain files of a sharded checkpoint's folder, with sizes and digests computed now (links are not followed). */
async function setOnDisk(path: string, set: string): Promise<StoredFile[]> {
  const names = (await readdir(path, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
  if (names.length > MAX_SET_FILES) {
    throw new FormatError(`${path} holds ${names.length} files, more than a checkpoint may have`, { path });
  }
  const paths = names.map((name) => join(path, name));
  const digests = await sha256Files(paths);
  const sizes = await Promise.all(paths.map(async (p) => (await stat(p)).size));
  return names.map((name, i) => ({ file: `${set}/${name}`, size: sizes[i] as number, sha256: digests[i] as string }));
}

async function inspects(backend: StorageBackend, path: string): Promise<boolean> {
  try {
    await backend.inspect(path);
    return true;
  } catch {
    return false;
  }
}

/** A record's file as listed: its size, or undefined when it is not there. */
function statListed(file: string, confined: Confinement, listing: FolderListing): { size: number } | undefined {
  if (!file.includes('/')) {
    const kind = listing.kind(file);
    if (kind === undefined) return undefined;
    if (kind === 'file') return { size: listing.fileSize(file) as number };
  }
  return confined.stat(file); // a link (which must stay inside), a folder, or a file in a subfolder
}

/** Marks missing and wrong-sized files (a full digest check is `verify`'s job). */
function checkFilePresent(
  record: StoredRecord,
  confined: Confinement,
  listing: FolderListing,
  report: RecoveryReport,
): void {
  if (record.files) {
    checkSetPresent(record, record.files, confined, report);
    return;
  }
  let info: { size: number } | undefined;
  try {
    info = statListed(record.file, confined, listing);
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    if (record.status !== 'corrupted') report.corrupted.push(record.id); // a link that leads outside
    record.status = 'corrupted';
    return;
  }
  if (!info) {
    if (record.status !== 'missing') report.missing.push(record.id);
    record.status = 'missing';
  } else if (info.size !== record.size) {
    if (record.status !== 'corrupted') report.corrupted.push(record.id);
    record.status = 'corrupted';
  } else if (record.status === 'missing') {
    record.status = 'ok'; // the file came back
  }
}

/** A sharded checkpoint: missing when none of its files is there, corrupted when some are missing or of the wrong size. */
function checkSetPresent(record: StoredRecord, files: StoredFile[], confined: Confinement, report: RecoveryReport) {
  let present = 0;
  let intact = 0;
  for (const { file, size } of files) {
    let info: { size: number } | undefined;
    try {
      info = confined.stat(file);
    } catch (error) {
      if (!(error instanceof FormatError)) throw error; // leads outside: not this checkpoint's file
      present++;
      continue;
    }
    if (info) present++;
    if (info?.size === size) intact++;
  }
  const status = intact === files.length ? 'ok' : present === 0 ? 'missing' : 'corrupted';
  if (status === 'ok') {
    if (record.status === 'missing') record.status = 'ok'; // the files came back
    return;
  }
  if (record.status !== status) report[status].push(record.id);
  record.status = status;
}

async function adopt(index: IndexFile, context: RecoveryContext, report: RecoveryReport): Promise<void> {
  const candidates = await Promise.all(
    report.orphans.map(async (name) => ({ name, mtime: (await stat(join(context.folder, name))).mtimeMs })),
  );
  candidates.sort((a, b) => a.mtime - b.mtime);
  for (const { name, mtime } of candidates) {
    const path = join(context.folder, name);
    let metadata: Record<string, string>;
    try {
      metadata = (await context.backend.inspect(path)).metadata;
    } catch {
      continue; // not a complete, readable checkpoint: left alone
    }
    const saved = parseSavedRecord(metadata.ckpt_record);
    const { size } = await stat(path);
    index.checkpoints.push({
      id: name.replace(/(\.[^.]+)+$/, ''),
      sequence: index.nextSequence++,
      experiment: context.experiment,
      model: context.model,
      epoch: saved.epoch ?? null,
      step: saved.step ?? null,
      timestamp: saved.timestamp ?? new Date(mtime).toISOString(),
      file: name,
      format: context.backend.name,
      size,
      sha256: await sha256File(path),
      metrics: saved.metrics ?? {},
      tags: [...(saved.tags ?? []), 'adopted'],
      isBest: false,
      isLatest: false,
      protected: false,
      status: 'ok',
    });
    report.adopted.push(name);
  }
  report.orphans = report.orphans.filter((name) => !report.adopted.includes(name));
}

interface SavedRecord {
  epoch?: number;
  step?: number;
  timestamp?: string;
  metrics?: Record<string, number>;
  tags?: string[];
}

/** The record the manager writes into each checkpoint's metadata (`ckpt_record`), if readable. */
export function parseSavedRecord(text: string | undefined): SavedRecord {
  if (!text) return {};
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    const out: SavedRecord = {};
    if (typeof value.epoch === 'number') out.epoch = value.epoch;
    if (typeof value.step === 'number') out.step = value.step;
    if (typeof value.timestamp === 'string') out.timestamp = value.timestamp;
    if (typeof value.metrics === 'object' && value.metrics !== null)
      out.metrics = value.metrics as Record<string, number>;
    if (Array.isArray(value.tags)) out.tags = value.tags.map((tag) => shown(tag));
    return out;
  } catch {
    return {};
  }
}

/**
 * A temporary no running save claims is removed only once it has not changed
 * for this long: another process may be writing it (a link being replaced, a
 * save whose intent this opening cannot see yet), and a writer changes its
 * temporary at least every few seconds while it writes.
 */
const STALE_TEMPORARY_MS = 10 * 60_000;

/** The file a temporary (`.<name>.<random>.ckpt-tmp`) is written for. */
function temporaryTarget(temporary: string): string {
  const stem = temporary.slice(1, -TEMP_SUFFIX.length);
  return stem.slice(0, stem.lastIndexOf('.'));
}

async function recentlyChanged(path: string): Promise<boolean> {
  const info = await lstat(path).catch(() => undefined);
  return info !== undefined && Date.now() - info.mtimeMs < STALE_TEMPORARY_MS;
}
