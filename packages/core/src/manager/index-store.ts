/**
 * The experiment index: a JSON snapshot (`checkpoint_metadata.json`) plus a
 * journal of changes (`checkpoint_metadata.json.journal`, one JSON object per
 * line), changed only under an inter-process lock.
 *
 * A change appends one line (and flushes it when asked): no file is created
 * or rewritten, so a commit costs one append whatever the number of
 * checkpoints. Every entry sets a value (a record by id, a file in the
 * deletion list), so replaying the journal over a snapshot that already
 * holds some of it gives the same index. Compaction writes a new snapshot
 * atomically, then replaces the journal with an empty one (a new file, so a
 * reader's cache notices); it runs when the journal grows and on close.
 * A line torn by a crash (the last one, without its newline) is ignored and
 * removed by the next compaction.
 */
import { closeSync, fdatasyncSync, fstatSync, openSync, statSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lockFile, writeFileAtomic } from '@ckpt/native';
import { FormatError, shown } from '../errors.js';
import { RecordFacts } from './facts.js';
import { plainNameProblem, relativePathProblem } from './names.js';
import {
  type Gather,
  INDEX_VERSION,
  type IndexFile,
  type PendingSave,
  type RejectedEntry,
  type StoredFile,
  type StoredRecord,
} from './record.js';
import { MAX_SET_FILES } from './sets.js';

export const LOCK_FILE = '.ckpt.lock';
export const JOURNAL_SUFFIX = '.journal';
/**
 * Compact when the journal holds this many entries or bytes, or more than the
 * snapshot itself (about 1 KB a record): compaction rewrites every record, so
 * it runs once per as many saves as there are records, and its cost per save
 * stays the same however long the history.
 */
const COMPACT_ENTRIES = 512;
/** Reads of an index that writers keep changing before one is taken as it is (the next read reads it again). */
const MAX_READS = 20;
const COMPACT_BYTES = 4 << 20;
const ENTRIES_PER_RECORD = 8;
const BYTES_PER_RECORD = 1024;

type Entry =
  | { op: 'put'; record: StoredRecord }
  | { op: 'del'; id: string }
  | { op: 'intent'; save: PendingSave }
  | { op: 'abort'; id: string }
  | { op: 'deleting'; add?: string[]; remove?: string[] }
  | { op: 'meta'; best?: IndexFile['best']; nextSequence: number };

interface Loaded {
  index: IndexFile;
  /** The snapshot's and the journal's identities when read (inode, size, mtime). */
  key: string;
  /** The journal's inode (undefined without a journal). */
  ino: bigint | undefined;
  entries: number;
  bytes: number;
  torn: boolean;
  /** Built on first use, then kept current by every change written through this store. */
  facts?: RecordFacts;
}

export interface StoreOptions {
  experiment: string;
  model: string;
  fsync: boolean;
  lockTimeoutMs: number;
}

export interface UpdateOptions {
  /** False: run the change, write nothing. */
  write?: boolean;
  /** False: journal without flushing (with `fsync` on). */
  flush?: boolean;
  /**
   * The change reports every record it puts through `changes.put` and
   * removes none, so nothing compares the records (a save, whose cost must
   * not grow with their number).
   */
  declared?: boolean;
  /** Started once the lock is held, to run while the index is read (the change awaits what it started). */
  whileReading?: () => Promise<unknown>;
}

export class IndexStore {
  readonly path: string;
  readonly journalPath: string;
  readonly lockPath: string;
  #cache: Loaded | undefined;
  #journal: { fd: number; ino: bigint } | undefined;

  constructor(
    readonly folder: string,
    indexFile: string,
    private readonly options: StoreOptions,
  ) {
    this.path = join(folder, indexFile);
    this.journalPath = this.path + JOURNAL_SUFFIX;
    this.lockPath = join(folder, LOCK_FILE);
  }

  /**
   * Facts about the records of the index last read (file names, the flagged
   * best and latest), without a scan. Built on first use (a save needs it, an
   * opening does not), then kept current by every change written through this
   * store: inside `update`, ask before changing the index.
   */
  facts(): RecordFacts {
    const loaded = this.#cache;
    if (!loaded) throw new Error('IndexStore.facts() needs the index read first (read() or update())');
    loaded.facts ??= new RecordFacts(loaded.index.checkpoints);
    return loaded.facts;
  }

  /** The current index (shared: change it only inside `update`). */
  async read(): Promise<IndexFile> {
    return (await this.#load()).index;
  }

  // The journal's small operations are synchronous: each is a few microseconds in
  // the kernel, while a trip through libuv's thread pool costs ~250 µs on a quiet VM.
  // The cached index is current while both files are: the snapshot is only ever
  // replaced (a new inode) and the journal only appended to (a new size).
  #identity(): { key: string; journalIno: bigint | undefined } {
    const snapshot = statSync(this.path, { bigint: true, throwIfNoEntry: false });
    const journal = statSync(this.journalPath, { bigint: true, throwIfNoEntry: false });
    const part = (info: typeof snapshot) => (info ? `${info.ino}:${info.size}:${info.mtimeNs}` : 'none');
    return { key: `${part(snapshot)}|${part(journal)}`, journalIno: journal?.ino };
  }

  /**
   * The index as of now. Readers take no lock, so a writer may compact (a new
   * snapshot, then an empty journal) while the two files are read: a read is
   * kept only when both files were the same before and after it, else it is
   * read again (an old snapshot with a new journal would lose changes).
   */
  async #load(): Promise<Loaded> {
    for (let attempt = 1; ; attempt++) {
      const identity = this.#identity();
      if (this.#cache && this.#cache.key === identity.key) return this.#cache;
      const loaded = await this.#read(identity);
      if (attempt >= MAX_READS || this.#identity().key === identity.key) {
        this.#cache = loaded;
        return loaded;
      }
    }
  }

  async #read(identity: { key: string; journalIno: bigint | undefined }): Promise<Loaded> {
    const { key } = identity;
    const index = await this.#readSnapshot();
    let entries = 0;
    let bytes = 0;
    let torn = false;
    if (identity.journalIno !== undefined) {
      const text = await readFile(this.journalPath, 'utf8').catch(() => '');
      bytes = Buffer.byteLength(text);
      const lines = text.split('\n');
      const last = lines.pop() as string; // '' when the journal ends with a newline
      if (last !== '') torn = true; // a torn append: ignored
      let journal: Replay | undefined; // built for the first entry: most openings find the journal empty
      for (const [i, line] of lines.entries()) {
        if (line === '') continue;
        journal ??= new Replay(index);
        const where = `${this.journalPath}:${i + 1}`;
        let entry: Entry;
        try {
          entry = JSON.parse(line);
        } catch {
          journal.reject(where, 'the line is not JSON', line);
          continue;
        }
        journal.apply(entry, where);
        entries++;
      }
      journal?.finish();
    }
    return { index, key, ino: identity.journalIno, entries, bytes, torn };
  }

  async #readSnapshot(): Promise<IndexFile> {
    let text: string;
    try {
      text = (await readFile(this.path)).toString('utf8'); // decoded at once: a chunked decode costs a fifth more
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyIndex(this.options);
      throw error;
    }
    return parseIndex(text, this.path);
  }

  /**
   * Runs `change` on the index while holding the lock, then journals what it
   * changed (flushed when `fsync` is on and `flush` is not false).
   */
  async update<T>(
    change: (index: IndexFile, changes: Changes) => Promise<T> | T,
    /**
     * `declared`: the change reports every record it puts through `changes.put`
     * and removes none, so nothing compares the records (a save, whose cost
     * must not grow with their number).
     */
    options: UpdateOptions = {},
  ): Promise<{ index: IndexFile; result: T }> {
    const lock = await lockFile(this.lockPath, { timeoutMs: this.options.lockTimeoutMs });
    try {
      options.whileReading?.().catch(() => {}); // the change awaits it; a failure to read the index comes first
      const loaded = await this.#load();
      const { index } = loaded;
      const declared = options.declared ?? false;
      const before = snapshotOf(index, declared);
      const changes = new Changes();
      let result: T;
      try {
        result = await change(index, changes);
      } catch (error) {
        this.#cache = undefined; // `change` may have edited the cached index before failing
        throw error;
      }
      if (options.write === false) return { index, result };
      const entries = diff(before, index, changes, declared);
      for (const entry of entries) {
        if (entry.op === 'put') loaded.facts?.put(entry.record);
        else if (entry.op === 'del') loaded.facts?.delete(entry.id);
      }
      if (loaded.torn || loaded.ino === undefined || this.#mustCompact(loaded, entries)) {
        await this.compactLocked(index);
      } else if (entries.length > 0) {
        this.#append(loaded, entries, options.flush ?? true);
      }
      return { index, result };
    } finally {
      lock.release();
    }
  }

  #mustCompact(loaded: Loaded, entries: Entry[]): boolean {
    const records = loaded.index.checkpoints.length;
    return (
      loaded.entries + entries.length > Math.max(COMPACT_ENTRIES, ENTRIES_PER_RECORD * records) ||
      loaded.bytes > Math.max(COMPACT_BYTES, BYTES_PER_RECORD * records)
    );
  }

  #append(loaded: Loaded, entries: Entry[], flush: boolean): void {
    const text = `${entries.map((e) => JSON.stringify(e, keepNonFinite)).join('\n')}\n`;
    if (!this.#journal || this.#journal.ino !== loaded.ino) {
      if (this.#journal) closeSync(this.#journal.fd);
      const fd = openSync(this.journalPath, 'a');
      this.#journal = { fd, ino: fstatSync(fd, { bigint: true }).ino };
    }
    const bytes = Buffer.from(text);
    writeSync(this.#journal.fd, bytes);
    if (flush && this.options.fsync) fdatasyncSync(this.#journal.fd);
    loaded.entries += entries.length;
    loaded.bytes += bytes.length;
    loaded.key = this.#identity().key; // under the lock: only this append changed the files
    this.#cache = loaded;
  }

  /** Writes the snapshot, then an empty journal in place of the old one. Needs the lock. */
  async compactLocked(index: IndexFile): Promise<void> {
    const text = indexText(index);
    this.#cache = undefined;
    await writeFileAtomic(this.path, [Buffer.from(text)], { fsync: this.options.fsync });
    await writeFileAtomic(this.journalPath, [], { fsync: this.options.fsync });
    const identity = this.#identity();
    this.#cache = { index, key: identity.key, ino: identity.journalIno, entries: 0, bytes: 0, torn: false };
  }

  /** Folds the journal into the snapshot (as `close` does), so the JSON file alone is complete. */
  async compact(): Promise<void> {
    const lock = await lockFile(this.lockPath, { timeoutMs: this.options.lockTimeoutMs });
    try {
      const loaded = await this.#load();
      if (loaded.entries > 0 || loaded.torn) await this.compactLocked(loaded.index);
    } finally {
      lock.release();
    }
  }

  /** Forgets the cached index (after a failed change). */
  forget(): void {
    this.#cache = undefined;
  }

  close(): void {
    if (this.#journal) closeSync(this.#journal.fd);
    this.#journal = undefined;
  }
}

function emptyIndex(options: { experiment: string; model: string }): IndexFile {
  return {
    version: INDEX_VERSION,
    experiment: options.experiment,
    model: options.model,
    nextSequence: 1,
    checkpoints: [],
    pending: [],
    deleting: [],
  };
}

/**
 * What a change did that comparing cannot see. Records are replaced, never
 * edited, so comparing identities finds every change; a save, whose cost must
 * not grow with the number of records, declares its puts instead.
 */
export class Changes {
  /** With `update(…, { declared: true })`: every record the change put (it removes none). */
  readonly puts: StoredRecord[] = [];

  /** Declares a record the change added or replaced (see `declared`). */
  put(record: StoredRecord): void {
    this.puts.push(record);
  }
}

interface Before {
  /** The records array as it was (a copy of the references: cheap, even for 50,000 records). */
  records: readonly StoredRecord[];
  pending: readonly PendingSave[];
  deleting: readonly string[];
  meta: string;
}

function meta(index: IndexFile): string {
  return JSON.stringify({ best: index.best, nextSequence: index.nextSequence });
}

function snapshotOf(index: IndexFile, declared: boolean): Before {
  return {
    records: declared ? [] : index.checkpoints.slice(),
    pending: index.pending.slice(),
    deleting: index.deleting.slice(),
    meta: meta(index),
  };
}

/**
 * The `put`s and `del`s that turn `before` into `records`. A save appends and
 * replaces a few records in place, so the common case is one pass of identity
 * comparisons with no allocation; anything else (a deletion, a reordering)
 * compares by id through maps.
 */
function recordEntries(before: readonly StoredRecord[], records: readonly StoredRecord[]): Entry[] {
  const entries: Entry[] = [];
  if (records.length >= before.length) {
    let aligned = true;
    for (let i = 0; i < before.length; i++) {
      const now = records[i] as StoredRecord;
      const was = before[i] as StoredRecord;
      if (now === was) continue;
      if (now.id !== was.id) {
        aligned = false;
        break;
      }
      entries.push({ op: 'put', record: now });
    }
    if (aligned) {
      for (let i = before.length; i < records.length; i++)
        entries.push({ op: 'put', record: records[i] as StoredRecord });
      return entries;
    }
    entries.length = 0;
  }
  const previous = new Map(before.map((r) => [r.id, r]));
  const now = new Set<string>();
  for (const record of records) {
    now.add(record.id);
    if (previous.get(record.id) !== record) entries.push({ op: 'put', record });
  }
  for (const id of previous.keys()) if (!now.has(id)) entries.push({ op: 'del', id });
  return entries;
}

/** The journal entries that turn `before` into `index`. */
function diff(before: Before, index: IndexFile, changes: Changes, declared: boolean): Entry[] {
  const entries: Entry[] = declared
    ? changes.puts.map((record) => ({ op: 'put', record }))
    : recordEntries(before.records, index.checkpoints);
  const pendingBefore = new Map(before.pending.map((p) => [p.record.id, p]));
  const pendingNow = new Set<string>();
  for (const save of index.pending) {
    pendingNow.add(save.record.id);
    if (pendingBefore.get(save.record.id) !== save) entries.push({ op: 'intent', save });
  }
  for (const id of pendingBefore.keys()) if (!pendingNow.has(id)) entries.push({ op: 'abort', id });
  const deletingBefore = new Set(before.deleting);
  const add = index.deleting.filter((f) => !deletingBefore.has(f));
  const remove = before.deleting.filter((f) => !index.deleting.includes(f));
  if (add.length > 0 || remove.length > 0) {
    entries.push({ op: 'deleting', ...(add.length ? { add } : {}), ...(remove.length ? { remove } : {}) });
  }
  if (meta(index) !== before.meta) entries.push({ op: 'meta', best: index.best, nextSequence: index.nextSequence });
  return entries;
}

/**
 * Replays journal entries onto an index. Each entry sets a value, so applying
 * it twice changes nothing. Records are kept in maps while replaying, so the
 * cost is linear in the journal's size, not in entries times records. An
 * entry that fails its checks is set aside in `rejected`, and the rest of the
 * journal still applies.
 */
class Replay {
  readonly #records: Map<string, StoredRecord>;
  readonly #pending: Map<string, PendingSave>;
  readonly #deleting: Set<string>;

  constructor(private readonly index: IndexFile) {
    this.#records = new Map(index.checkpoints.map((r) => [r.id, r]));
    this.#pending = new Map(index.pending.map((p) => [p.record.id, p]));
    this.#deleting = new Set(index.deleting);
  }

  reject(where: string, reason: string, entry: unknown): void {
    this.index.rejected ??= [];
    this.index.rejected.push({ where, reason, entry });
  }

  apply(entry: Entry, where: string): void {
    try {
      this.#apply(entry, where);
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      this.reject(where, error.message, entry);
    }
  }

  #apply(entry: Entry, where: string): void {
    switch (entry?.op) {
      case 'put': {
        const record = checkRecord(entry.record, where);
        this.#records.set(record.id, record);
        this.#pending.delete(record.id);
        this.index.nextSequence = Math.max(this.index.nextSequence, record.sequence + 1);
        return;
      }
      case 'del':
        this.#records.delete(shown(entry.id));
        return;
      case 'intent': {
        const save = checkPending(entry.save, where);
        const { record } = save;
        this.#pending.delete(record.id); // re-inserted last, as the intent is the newest
        this.#pending.set(record.id, save);
        this.index.nextSequence = Math.max(this.index.nextSequence, record.sequence + 1);
        return;
      }
      case 'abort':
        this.#pending.delete(shown(entry.id));
        return;
      case 'deleting': {
        const add = Array.isArray(entry.add) ? entry.add : [];
        const remove = Array.isArray(entry.remove) ? entry.remove : [];
        for (const file of add) checkFile(file, where); // the whole entry is refused if one name is bad
        for (const file of remove) this.#deleting.delete(shown(file));
        for (const file of add) this.#deleting.add(file);
        return;
      }
      case 'meta':
        if (entry.best !== undefined) this.index.best = checkBest(entry.best, where);
        this.index.nextSequence = Math.max(this.index.nextSequence, numberOr(entry.nextSequence, 1));
        return;
      default:
        throw new FormatError(`unknown checkpoint journal entry ${JSON.stringify((entry as { op?: unknown })?.op)}`, {
          path: where,
        });
    }
  }

  /** Writes the maps back into the index's lists. */
  finish(): void {
    this.index.checkpoints = [...this.#records.values()];
    this.index.pending = [...this.#pending.values()];
    this.index.deleting = [...this.#deleting];
  }
}

/**
 * The snapshot's text: one line for the experiment's settings and lists, then
 * one line per record (readable and greppable, and at 50,000 records a third
 * smaller and quicker to parse than indented JSON).
 */
function indexText(index: IndexFile): string {
  const { checkpoints, ...rest } = index;
  const head = JSON.stringify(rest, keepNonFinite); // `{"version":…}`: never empty
  const records = checkpoints.map((record) => JSON.stringify(record, keepNonFinite)).join(',\n');
  return `${head.slice(0, -1)},"checkpoints":[\n${records}\n]}\n`;
}

/** JSON has no NaN or infinity: metrics keep them as the strings "NaN", "Infinity", "-Infinity". */
function keepNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

function readMetrics(metrics: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = Object.create(null); // names come from the file: `__proto__` is a name
  for (const name of Object.keys(metrics)) {
    const value = metrics[name];
    if (typeof value === 'number') out[name] = value;
    else if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') out[name] = Number(value);
  }
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses and checks the snapshot's text. */
export function parseIndex(text: string, path: string): IndexFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new FormatError(`the checkpoint index is not valid JSON: ${(error as Error).message}`, {
      path,
      expected: 'the JSON the CheckpointManager writes',
      cause: error,
    });
  }
  if (!isObject(value) || !Array.isArray(value.checkpoints)) {
    throw new FormatError('the checkpoint index has no `checkpoints` list', {
      path,
      expected: 'an object with `checkpoints`',
    });
  }
  if (typeof value.version !== 'number' || value.version > INDEX_VERSION) {
    throw new FormatError(`unsupported checkpoint index version ${shown(value.version)}`, {
      path,
      expected: `version ${INDEX_VERSION} or older`,
      found: shown(value.version),
    });
  }
  const rejected: RejectedEntry[] = Array.isArray(value.rejected)
    ? value.rejected.filter(isObject).map((r) => ({ where: shown(r.where), reason: shown(r.reason), entry: r.entry }))
    : [];
  /** Checks each entry on its own: a bad one is set aside, the others stay usable. */
  const each = <T>(list: unknown, name: string, check: (entry: unknown, where: string) => T): T[] => {
    const out: T[] = [];
    for (const [i, entry] of (Array.isArray(list) ? list : []).entries()) {
      const where = `${path} ${name}[${i}]`;
      try {
        out.push(check(entry, where));
      } catch (error) {
        if (!(error instanceof FormatError)) throw error;
        rejected.push({ where, reason: error.message, entry });
      }
    }
    return out;
  };
  const checkpoints = each(value.checkpoints, 'checkpoints', checkRecord);
  const pending = each(value.pending, 'pending', checkPending);
  const deleting = each(value.deleting, 'deleting', checkFile);
  const highest = [...checkpoints, ...pending.map((p) => p.record)].reduce((max, r) => Math.max(max, r.sequence), 0);
  return {
    version: INDEX_VERSION,
    experiment: shown(value.experiment ?? ''),
    model: shown(value.model ?? ''),
    ...(value.best !== undefined ? { best: checkBestOrUndefined(value.best) } : {}),
    nextSequence: Math.max(numberOr(value.nextSequence, 1), highest + 1),
    checkpoints,
    pending,
    deleting,
    ...(rejected.length > 0 ? { rejected } : {}),
  };
}

/** How best is decided, as the index records it. */
function checkBest(value: unknown, where: string): NonNullable<IndexFile['best']> {
  if (!isObject(value) || (value.mode !== 'min' && value.mode !== 'max')) {
    throw new FormatError('bad `best`: expected { monitor?, mode: "min" | "max" }', { path: where });
  }
  return { ...(typeof value.monitor === 'string' ? { monitor: value.monitor } : {}), mode: value.mode };
}

function checkBestOrUndefined(value: unknown): IndexFile['best'] {
  try {
    return checkBest(value, '');
  } catch {
    return undefined;
  }
}

function checkFile(file: unknown, where: string): string {
  const problem = relativePathProblem(file);
  if (problem) {
    throw new FormatError(
      `bad checkpoint record: file ${JSON.stringify(file)} ${problem}; it must name a file inside the experiment folder`,
      { path: where },
    );
  }
  return file as string;
}

function checkRecord(value: unknown, where: string): StoredRecord {
  const fail = (what: string): never => {
    throw new FormatError(`bad checkpoint record: ${what}`, { path: where });
  };
  if (!isObject(value)) return fail('not an object');
  for (const key of ['id', 'file', 'sha256', 'timestamp', 'format'] as const) {
    if (typeof value[key] !== 'string') fail(`\`${key}\` is not a string`);
  }
  if (typeof value.size !== 'number') fail('`size` is not a number');
  if (!isObject(value.metrics)) fail('`metrics` is not an object');
  const idProblem = plainNameProblem(value.id);
  if (idProblem) fail(`id ${JSON.stringify(value.id)} ${idProblem}; an id becomes a file name`);
  checkFile(value.file, where);
  if (isObject(value.backup)) checkFile(value.backup.file, where);
  const files = value.files === undefined ? undefined : checkSetFiles(value, where, fail);
  // The object was just parsed and belongs to no one else: it is completed in place (no copy of 50,000 records).
  const record = value as unknown as StoredRecord;
  record.sequence = typeof value.sequence === 'number' ? value.sequence : 0;
  record.epoch = typeof value.epoch === 'number' ? value.epoch : null;
  record.step = typeof value.step === 'number' ? value.step : null;
  record.metrics = readMetrics(value.metrics as Record<string, unknown>);
  record.tags = readTags(value.tags);
  record.isBest = value.isBest === true;
  record.isLatest = value.isLatest === true;
  record.protected = value.protected === true;
  record.status = value.status === 'missing' || value.status === 'corrupted' ? value.status : 'ok';
  if (files) record.files = files;
  return record;
}

/** A save in progress: its record to be and, for a multi-process save, what its ranks did. */
function checkPending(value: unknown, where: string): PendingSave {
  const save = isObject(value) ? value : {};
  const record = checkRecord(save.record, where);
  const out: PendingSave = { owner: shown(save.owner), record };
  if (save.gather !== undefined) out.gather = checkGather(save.gather, record, where);
  return out;
}

/** The most ranks one checkpoint may gather. */
const MAX_WORLD_SIZE = 65_536;

function checkGather(value: unknown, record: StoredRecord, where: string): Gather {
  const fail = (what: string): never => {
    throw new FormatError(`bad multi-process save ${record.id}: ${what}`, { path: where });
  };
  if (!isObject(value)) return fail('not an object');
  const { worldSize } = value;
  if (typeof worldSize !== 'number' || !Number.isInteger(worldSize) || worldSize < 2 || worldSize > MAX_WORLD_SIZE) {
    return fail(`worldSize ${shown(worldSize)} is not 2 to ${MAX_WORLD_SIZE}`);
  }
  if (!record.files) fail('its record names no set of files');
  const isRank = (rank: unknown): rank is number =>
    Number.isInteger(rank) && (rank as number) >= 0 && (rank as number) < worldSize;
  const list = (name: string): Record<string, unknown>[] => {
    const items = value[name];
    if (!Array.isArray(items) || items.length > worldSize || !items.every(isObject)) fail(`\`${name}\` is not a list`);
    const ranks = (items as Record<string, unknown>[]).map((item) => item.rank);
    if (!ranks.every(isRank) || new Set(ranks).size !== ranks.length)
      fail(`\`${name}\` repeats a rank or has one out of range`);
    return items as Record<string, unknown>[];
  };
  const set = `${record.file.split('/')[0]}/`;
  const parts = list('parts').map((part) => {
    const { file, size, sha256, tensors } = part;
    if (typeof file !== 'string' || !file.startsWith(set) || file.slice(set.length).includes('/')) {
      return fail(`part ${JSON.stringify(file)} is not in the checkpoint's folder`);
    }
    checkFile(file, where);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || typeof sha256 !== 'string') {
      return fail(`part ${file} has no size or digest`);
    }
    if (!Array.isArray(tensors) || !tensors.every((t) => typeof t === 'string')) fail(`part ${file} lists no tensors`);
    return { rank: part.rank as number, file, size, sha256, tensors: tensors as string[] };
  });
  return {
    worldSize,
    started: shown(value.started),
    ranks: list('ranks').map((r) => ({ rank: r.rank as number, owner: shown(r.owner) })),
    parts,
  };
}

/**
 * A sharded checkpoint's files: all in one folder of the experiment folder
 * (`<set>/<name>`, the record's own file among them), so that removing the
 * set removes that folder and nothing else; its backup mirrors the layout.
 */
function checkSetFiles(value: Record<string, unknown>, where: string, fail: (what: string) => never): StoredFile[] {
  const file = value.file as string;
  const parts = file.split('/');
  if (parts.length !== 2) fail(`a sharded checkpoint's file ${JSON.stringify(file)} is not <folder>/<name>`);
  const folder = `${parts[0]}/`;
  const list = value.files;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_SET_FILES) {
    return fail(`\`files\` is not a list of 1 to ${MAX_SET_FILES} files`);
  }
  const files: StoredFile[] = [];
  for (const entry of list) {
    if (!isObject(entry) || typeof entry.file !== 'string' || typeof entry.sha256 !== 'string') {
      return fail('an entry of `files` is not { file, size, sha256 }');
    }
    checkFile(entry.file, where);
    if (!entry.file.startsWith(folder) || entry.file.slice(folder.length).includes('/')) {
      fail(`shard ${JSON.stringify(entry.file)} is not in the checkpoint's folder ${JSON.stringify(folder)}`);
    }
    if (typeof entry.size !== 'number' || !Number.isSafeInteger(entry.size) || entry.size < 0) {
      fail(`shard ${JSON.stringify(entry.file)} has no size`);
    }
    files.push({ file: entry.file, size: entry.size as number, sha256: entry.sha256 });
  }
  if (!files.some((f) => f.file === file)) fail(`\`files\` does not list the checkpoint's own file ${file}`);
  const backup = isObject(value.backup) ? value.backup.file : undefined;
  if (typeof backup === 'string' && !backup.endsWith(`/${file}`)) {
    fail(`the backup ${JSON.stringify(backup)} of a sharded checkpoint does not mirror ${file}`);
  }
  return files;
}

function readTags(tags: unknown): string[] {
  if (!Array.isArray(tags)) return [];
  return tags.every((tag) => typeof tag === 'string') ? tags : tags.map((tag) => shown(tag));
}

/** `value` when it is a finite number, else `fallback`: never Number() of a value from the file, which may throw. */
function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}
