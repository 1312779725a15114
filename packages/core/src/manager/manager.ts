/**
 * The CheckpointManager: saves under policies, tracks best and latest,
 * retains, verifies, backs up, exports and resumes, over any storage backend.
 *
 * The save protocol (what makes a crash at any instant recoverable):
 *  1. under the experiment lock, an intent naming the file is journaled and
 *     flushed: the name is reserved;
 *  2. the backend writes the file atomically under that name (temporary,
 *     flush, rename), hashing it in the same pass;
 *  3. under the lock, the record with its digest replaces the intent.
 * A crash in 2 leaves only the backend's temporary (removed on the next
 * open) and an intent, dropped then; a crash between 2 and 3 leaves a
 * complete file, which the next open commits after hashing it. No torn file
 * ever has a final name, and nothing is committed that is not on disk.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { sha256File, writeFileAtomic } from '@ckpt/native';
import { LRUCache } from 'lru-cache';
import { convertCheckpoint } from '../convert.js';
import {
  ConflictError,
  FormatError,
  IntegrityError,
  InvalidArgumentError,
  NotFoundError,
  UnsupportedError,
  VetoedError,
} from '../errors.js';
import type { CheckpointEvents, CheckpointInfo, EmitResult } from '../events.js';
import type { Inspection, SaveResult, StorageBackend } from '../storage.js';
import { assertStateTree, type StateTree, type StateValue } from '../tree.js';
import { type Comparison, compareConfigs, compareMetrics, compareTensors } from './compare.js';
import { readablePath, writablePath } from './confine.js';
import { copyVerified, gunzipFile, gzipFile, linkAtomically, makeStagingDir, OWNER } from './files.js';
import { type Changes, IndexStore } from './index-store.js';
import { type CheckpointManagerOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { keepIfAny } from './policies.js';
import { findBest, findLatest, refreshFlags, type Selector, selectOrThrow } from './ranking.js';
import type { CheckpointRecord, CheckpointStatus, IndexFile, StoredRecord } from './record.js';
import { type RecoveryReport, reconcile } from './recovery.js';
import { snapshotState } from './snapshot.js';

export interface SaveInput {
  /** The whole state to write. Or give `model` (and `optimizer`, `scheduler`) instead. */
  state?: StateTree;
  /** Written as `model_state_dict`, with `optimizer_state_dict` and `scheduler_state_dict`, as torch code expects. */
  model?: StateValue;
  optimizer?: StateValue;
  scheduler?: StateValue;
  epoch?: number;
  step?: number;
  metrics?: Record<string, number>;
  config?: Record<string, unknown>;
  tags?: string[];
  description?: string;
  /** Written into the file's metadata (string to string). */
  metadata?: Record<string, string>;
  /** Save even when the save policy says not to. */
  force?: boolean;
  /** Protect the new checkpoint from retention. */
  protect?: boolean;
}

export type SaveOutcome =
  | { status: 'saved'; record: CheckpointRecord }
  | { status: 'skipped'; record: null; reason: string }
  | { status: 'pending'; record: null; done: Promise<SaveCompletion> };

/** How a background save ended; failures are also thrown by the next `save`, `flush` or `close`. */
export type SaveCompletion =
  | { status: 'saved'; record: CheckpointRecord }
  | { status: 'skipped'; record: null; reason: string }
  | { status: 'failed'; record: null; error: unknown };

export interface LoadOptions {
  /** Check the SHA-256 before reading (default: the manager's `integrity.verifyOnLoad`). */
  verifyIntegrity?: boolean;
  /** Copy tensors out of the file instead of zero-copy views. */
  copy?: boolean;
}

export interface LoadedCheckpoint {
  record: CheckpointRecord;
  state: StateTree;
  metadata: Record<string, string>;
}

export interface ListFilter {
  tag?: string;
  /** Every one of these tags. */
  tags?: string[];
  epoch?: number;
  minEpoch?: number;
  maxEpoch?: number;
  step?: number;
  /** Metric bounds, inclusive: `{ name: 'val_loss', max: 0.5 }`. */
  metric?: { name: string; min?: number; max?: number };
  status?: CheckpointStatus;
  protected?: boolean;
  /** `'sequence'` (default), `'epoch'`, `'step'`, `'timestamp'`, `'size'`, or `'metric:<name>'`. */
  sortBy?: string;
  order?: 'asc' | 'desc';
  limit?: number;
}

export interface VerifyResult {
  id: string;
  status: CheckpointStatus;
  expected: string;
  actual?: string;
  path: string;
  /** Why the file was not read, when it was refused (a link that leads outside the experiment folder). */
  problem?: string;
}

export interface ExportResult {
  destination: string;
  format: string;
  files: Array<{ path: string; size: number; sha256: string }>;
  manifest: string;
}

export interface Summary {
  experiment: string;
  model: string;
  folder: string;
  count: number;
  totalSize: number;
  best: { id: string; metrics: Record<string, number> } | null;
  latest: { id: string; epoch: number | null; step: number | null } | null;
  byTag: Record<string, number>;
  byStatus: Record<CheckpointStatus, number>;
  /** Checkpoints that are missing or corrupted. */
  problems: Array<{ id: string; status: CheckpointStatus }>;
  protected: number;
  backedUp: number;
}

const RECORD_METADATA_KEY = 'ckpt_record';

function nonNegativeInteger(value: unknown, what: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new InvalidArgumentError(`save: \`${what}\` must be a non-negative integer`, { found: String(value) });
  }
  return value;
}

function checkMetrics(metrics: unknown): Record<string, number> {
  if (metrics === undefined) return {};
  if (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics)) {
    throw new InvalidArgumentError('save: `metrics` must be an object of numbers', { found: String(metrics) });
  }
  for (const [name, value] of Object.entries(metrics)) {
    if (typeof value !== 'number') {
      throw new InvalidArgumentError(`save: metric ${JSON.stringify(name)} must be a number`, {
        found: typeof value,
      });
    }
  }
  return { ...(metrics as Record<string, number>) };
}

function composeState(input: SaveInput): StateTree {
  if (input.state !== undefined) {
    if (input.model !== undefined) throw new InvalidArgumentError('save: give `state` or `model`, not both');
    assertStateTree(input.state, 'save: state');
    return input.state;
  }
  if (input.model === undefined) {
    throw new InvalidArgumentError('save: nothing to save', {
      expected: '`state`, or `model` (with `optimizer`, ...)',
    });
  }
  const state: StateTree = { model_state_dict: input.model };
  if (input.optimizer !== undefined) state.optimizer_state_dict = input.optimizer;
  if (input.scheduler !== undefined) state.scheduler_state_dict = input.scheduler;
  if (input.epoch !== undefined) state.epoch = input.epoch;
  if (input.step !== undefined) state.step = input.step;
  assertStateTree(state, 'save: state');
  return state;
}

interface Prepared {
  state: StateTree;
  epoch: number | null;
  step: number | null;
  metrics: Record<string, number>;
  config: Record<string, unknown> | undefined;
  tags: string[];
  description: string | undefined;
  metadata: Record<string, string>;
  protect: boolean;
}

/** A list for a message: the first ten, and how many more (an index may name 200,000). */
function firstFew(list: string[]): string[] {
  return list.length <= 10 ? list : [...list.slice(0, 10), `... and ${list.length - 10} more`];
}

export class CheckpointManager {
  readonly #o: ResolvedOptions;
  readonly #store: IndexStore;
  readonly #cache: LRUCache<string, IndexFile | Inspection>;
  /** Saves run one at a time: each waits for the previous one's write. */
  #queue: Promise<unknown> = Promise.resolve();
  #failure: unknown;
  #closed = false;
  /** This manager's staging folder, made on the first save (saves run one at a time). */
  #staging: string | undefined;
  #recovery: RecoveryReport | undefined;
  /** The experiment's folder. */
  readonly folder: string;

  private constructor(options: ResolvedOptions, folder: string) {
    this.#o = options;
    this.folder = folder;
    this.#store = new IndexStore(folder, options.layout.indexFile, {
      experiment: options.experiment,
      model: options.model,
      fsync: options.fsync,
      lockTimeoutMs: options.lockTimeoutMs,
    });
    this.#cache = new LRUCache({ max: options.cache.max, ttl: options.cache.ttlMs || 1 });
  }

  /** Opens (or starts) an experiment: checks the options, reconciles the folder with the index. */
  static async open(options: CheckpointManagerOptions): Promise<CheckpointManager> {
    const resolved = resolveOptions(options);
    const folder = join(
      resolved.root,
      resolved.layout.folder({ experiment: resolved.experiment, model: resolved.model }),
    );
    if (!resolved.readOnly) await mkdir(folder, { recursive: true });
    const manager = new CheckpointManager(resolved, folder);
    await manager.#open();
    return manager;
  }

  get experiment(): string {
    return this.#o.experiment;
  }

  get model(): string {
    return this.#o.model;
  }

  /** Reads the index and reports what recovery would do, changing nothing on disk. */
  async #openReadOnly(): Promise<void> {
    // The store's copy is this manager's alone, and nothing is written back: statuses are marked in place.
    const index = await this.#store.read();
    const report = await reconcile(index, this.#recoveryContext());
    refreshFlags(index.checkpoints, this.#o.score);
    this.#recovery = report;
    this.#remember(index);
    this.#warnAboutRecovery(report);
  }

  #recoveryContext() {
    return {
      folder: this.folder,
      backend: this.#o.backend,
      extensions: [this.extension],
      reserved: this.#reservedNames(),
      adoptOrphans: this.#o.adoptOrphans,
      readOnly: this.#o.readOnly,
      fsync: this.#o.fsync,
      experiment: this.#o.experiment,
      model: this.#o.model,
    };
  }

  /** What reconciling the folder found and did when the manager opened. */
  get recovery(): RecoveryReport {
    return this.#recovery as RecoveryReport;
  }

  /** The extension checkpoint files get. */
  get extension(): string {
    const own = this.#o.layout.extension ?? this.#o.backend.extensions.find((e) => !e.endsWith('.index.json'));
    return (own ?? '.ckpt') + (this.#o.compression ? '.gz' : '');
  }

  /** The stable copy of the best checkpoint (`best.pt`), for layouts that have one. */
  get bestPath(): string | undefined {
    const { layout } = this.#o;
    return layout.bestFile ? join(this.folder, layout.bestFile(this.extension)) : undefined;
  }

  async #open(): Promise<void> {
    if (this.#o.readOnly) return this.#openReadOnly();
    const { index, result } = await this.#update(async (index, changes) => {
      changes.everything(); // reconciling edits statuses in place
      const report = await reconcile(index, this.#recoveryContext());
      const previous = index.best;
      if (previous && (previous.monitor !== this.#o.best.monitor || previous.mode !== this.#o.best.mode)) {
        this.#o.warn(
          `${this.#o.experiment}: best was decided by ${previous.monitor ?? 'a function'} (${previous.mode}); now by ${this.#o.best.monitor ?? 'a function'} (${this.#o.best.mode}): flags recomputed`,
        );
      }
      index.best = this.#o.best;
      refreshFlags(index.checkpoints, this.#o.score);
      return report;
    });
    this.#recovery = result;
    this.#remember(index);
    this.#warnAboutRecovery(result);
    await this.#syncBestFile();
    await this.#notifyTracker('startExperiment', (t) =>
      t.startExperiment?.({ experiment: this.#o.experiment, model: this.#o.model }),
    );
    await this.#emit('experimentStart', { experiment: this.#o.experiment });
  }

  #warnAboutRecovery(result: RecoveryReport): void {
    const notable =
      result.rolledForward.length + result.dropped.length + result.missing.length + result.corrupted.length;
    if (notable > 0) {
      this.#o.warn(
        `${this.#o.experiment}: ${this.#o.readOnly ? 'found' : 'recovered the index'}: ${JSON.stringify({
          rolledForward: firstFew(result.rolledForward),
          dropped: firstFew(result.dropped),
          missing: firstFew(result.missing),
          corrupted: firstFew(result.corrupted),
        })}`,
      );
    }
    if (this.#o.readOnly && result.removed.length > 0) {
      this.#o.warn(
        `${this.#o.experiment}: opened read-only; a writer would remove ${result.removed.length} leftover(s): ${result.removed.slice(0, 3).join(', ')}`,
      );
    }
    if (result.rejected.length > 0) {
      this.#o.warn(
        `${this.#o.experiment}: ${result.rejected.length} index entr${result.rejected.length === 1 ? 'y was' : 'ies were'} refused and set aside (the rest of the experiment is usable): ${result.rejected.slice(0, 3).join('; ')}`,
      );
    }
    if (result.orphans.length > 0) {
      this.#o.warn(
        `${this.#o.experiment}: ${result.orphans.length} checkpoint file(s) without a record (${result.orphans.slice(0, 3).join(', ')}); open with adoptOrphans to adopt them`,
      );
    }
  }

  #reservedNames(): Set<string> {
    const names = new Set([this.#o.layout.indexFile]);
    const best = this.bestPath;
    if (best) names.add(basename(best));
    return names;
  }

  // ---------------------------------------------------------------- saving

  /**
   * Saves a checkpoint, or skips it with the reason when the save policy or
   * a `beforeSave` hook says so. In async mode it returns once the state is
   * snapshotted, with `done` resolving when the write is committed.
   */
  save(input: SaveInput): Promise<SaveOutcome> {
    this.#assertOpen();
    const turn = this.#queue.then(() => this.#saveTurn(input));
    this.#queue = turn.then((t) => t.writing).catch(() => undefined);
    return turn.then((t) => t.outcome);
  }

  async #saveTurn(input: SaveInput): Promise<{ outcome: SaveOutcome; writing?: Promise<unknown> }> {
    this.#throwFailure();
    const prepared = this.#prepare(input);
    if (!input.force) {
      const reason = await this.#policyDecision(prepared);
      if (reason !== true) return { outcome: await this.#skipped(prepared, reason) };
    }
    if (!this.#o.async) return { outcome: await this.#write(prepared) };
    prepared.state = snapshotState(prepared.state, this.#o.snapshot);
    const done: Promise<SaveCompletion> = this.#write(prepared).catch((error: unknown) => {
      this.#failure ??= error;
      return { status: 'failed', record: null, error };
    });
    return { outcome: { status: 'pending', record: null, done }, writing: done };
  }

  #prepare(input: SaveInput): Prepared {
    if (typeof input !== 'object' || input === null) throw new InvalidArgumentError('save: expected an object');
    const tags = input.tags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string' || t === '')) {
      throw new InvalidArgumentError('save: `tags` must be non-empty strings');
    }
    const metadata = input.metadata ?? {};
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw new InvalidArgumentError(`save: metadata ${key} must be a string`);
    }
    return {
      state: composeState(input),
      epoch: nonNegativeInteger(input.epoch, 'epoch'),
      step: nonNegativeInteger(input.step, 'step'),
      metrics: checkMetrics(input.metrics),
      config: input.config,
      tags: [...new Set(tags)],
      description: input.description,
      metadata: { ...metadata },
      protect: input.protect ?? false,
    };
  }

  async #policyDecision(prepared: Prepared): Promise<true | string> {
    const policy = this.#o.savePolicy;
    if (!policy) return true;
    const records = (await this.#index()).checkpoints.map((r) => this.#withPath(r));
    return policy({
      epoch: prepared.epoch,
      step: prepared.step,
      metrics: prepared.metrics,
      now: this.#o.now().getTime(),
      last: findLatest(records),
      best: findBest(records, this.#o.score),
      score: this.#o.score,
    });
  }

  async #skipped(prepared: Prepared, reason: string): Promise<SaveOutcome & { status: 'skipped' }> {
    await this.#emit('checkpointSkipped', {
      experiment: this.#o.experiment,
      epoch: prepared.epoch,
      step: prepared.step,
      metrics: prepared.metrics,
      reason,
    });
    return { status: 'skipped', record: null, reason };
  }

  async #write(
    prepared: Prepared,
  ): Promise<(SaveOutcome & { status: 'saved' }) | (SaveOutcome & { status: 'skipped' })> {
    const started = performance.now();
    const o = this.#o;
    const timestamp = o.now();
    const stem = o.layout.fileName({
      experiment: o.experiment,
      model: o.model,
      epoch: prepared.epoch,
      step: prepared.step,
      metrics: prepared.metrics,
      timestamp,
    });
    const before = {
      experiment: o.experiment,
      model: o.model,
      epoch: prepared.epoch,
      step: prepared.step,
      metrics: prepared.metrics,
      tags: prepared.tags,
      ...(prepared.description !== undefined ? { description: prepared.description } : {}),
      state: prepared.state as unknown,
      metadata: prepared.metadata,
      path: join(this.folder, this.#freeName(stem, await this.#index())),
    };
    const emitted = await this.#emit('beforeSave', before);
    if (emitted?.vetoed) {
      return this.#skipped(prepared, `vetoed by hook ${emitted.vetoed.hook}: ${emitted.vetoed.reason}`);
    }
    // Hooks may have amended tags, description or metadata.
    const tags = [...new Set(before.tags)];
    const metadata: Record<string, string> = {
      ...before.metadata,
      [RECORD_METADATA_KEY]: JSON.stringify({
        experiment: o.experiment,
        model: o.model,
        epoch: prepared.epoch,
        step: prepared.step,
        timestamp: timestamp.toISOString(),
        metrics: prepared.metrics,
        tags,
      }),
    };

    const { result: intent } = await this.#update((index) => {
      this.#tidy(index);
      const file = this.#freeName(stem, index);
      const record: StoredRecord = {
        id: file.slice(0, file.length - this.extension.length),
        sequence: index.nextSequence++,
        experiment: o.experiment,
        model: o.model,
        epoch: prepared.epoch,
        step: prepared.step,
        timestamp: timestamp.toISOString(),
        file,
        format: o.backend.name,
        size: 0,
        sha256: '',
        metrics: prepared.metrics,
        ...(prepared.config !== undefined ? { config: prepared.config } : {}),
        tags,
        ...(before.description !== undefined ? { description: before.description } : {}),
        isBest: false,
        isLatest: false,
        protected: prepared.protect,
        status: 'ok',
        ...(o.compression ? { compression: o.compression } : {}),
      };
      index.pending.push({ owner: OWNER, record });
      return record;
    });
    try {
      const written = await this.#writeFile(intent, prepared.state, metadata);
      // Not flushed: if this entry is lost, recovery commits the file from the intent.
      const { index, result } = await this.#update(
        (index) => {
          index.pending = index.pending.filter((p) => p.record.id !== intent.id);
          index.checkpoints.push({ ...intent, ...written });
          const changed = refreshFlags(index.checkpoints, o.score);
          changed.delete(intent.id);
          const stored = index.checkpoints.find((r) => r.id === intent.id) as StoredRecord;
          return { stored, changed };
        },
        { flush: false },
      );
      this.#remember(index);
      return { status: 'saved', record: await this.#afterCommit(result.stored, index, result.changed, started) };
    } catch (error) {
      if (!(await this.#isCommitted(intent.id))) {
        await this.#update((index) => {
          index.pending = index.pending.filter((p) => p.record.id !== intent.id);
        }).catch(() => undefined); // recovery drops it otherwise
      }
      throw error;
    }
  }

  async #isCommitted(id: string): Promise<boolean> {
    return (await this.#index(true).catch(() => undefined))?.checkpoints.some((r) => r.id === id) ?? false;
  }

  /** Writes the file under its final name (atomically, by the backend); returns its size and digest. */
  async #writeFile(
    intent: StoredRecord,
    state: StateTree,
    metadata: Record<string, string>,
  ): Promise<{ size: number; sha256: string }> {
    const o = this.#o;
    const path = join(this.folder, intent.file);
    const options = { ...o.saveOptions, metadata, fsync: o.fsync };
    const single = (saved: SaveResult) => {
      if (saved.files.length !== 1) {
        throw new UnsupportedError('the CheckpointManager keeps single-file checkpoints; do not pass maxShardSize', {
          found: `${saved.files.length} files`,
        });
      }
      return { size: saved.size, sha256: saved.sha256 };
    };
    if (!o.compression) return single(await o.backend.save(path, state, options));
    this.#staging ??= await makeStagingDir(this.folder);
    const staged = join(this.#staging, basename(intent.file, '.gz'));
    try {
      single(await o.backend.save(staged, state, options));
      return await gzipFile(staged, path, o.fsync);
    } finally {
      await rm(staged, { force: true });
    }
  }

  /** Retention, the best file, backups, tracker and hooks, once a save is committed. */
  async #afterCommit(
    stored: StoredRecord,
    index: IndexFile,
    changed: Set<string>,
    started: number,
  ): Promise<CheckpointRecord> {
    const o = this.#o;
    const record = this.#withPath(stored);
    const previousBest = findBest(
      index.checkpoints.filter((r) => r.id !== stored.id),
      o.score,
    );
    await this.#notifyTracker('recordCheckpoint', async (t) => {
      await t.recordCheckpoint(record);
      for (const other of index.checkpoints) {
        if (changed.has(other.id)) await t.updateCheckpoint?.(this.#withPath(other));
      }
    });
    if (Object.keys(record.metrics).length > 0) {
      await this.#notifyTracker('recordMetrics', (t) =>
        t.recordMetrics?.(o.experiment, record.metrics, { step: record.step, epoch: record.epoch }),
      );
    }
    if (record.isBest) {
      await this.#syncBestFile();
      await this.#emit('bestCheckpoint', {
        experiment: o.experiment,
        record: this.#info(record),
        ...(previousBest ? { previous: this.#info(this.#withPath(previousBest)) } : {}),
        ...(o.best.monitor ? { monitor: o.best.monitor, value: record.metrics[o.best.monitor] } : {}),
      });
    }
    await this.#emit('afterSave', {
      experiment: o.experiment,
      record: this.#info(record),
      durationMs: performance.now() - started,
    });
    if (o.backup?.(record)) await this.backup(record.id);
    if (o.retention.length > 0) await this.applyRetention();
    return (await this.get(record.id)) ?? record;
  }

  /** A file name not used by any record nor by a file on disk: `name`, then `name-v1`, `name-v2`, ... */
  #freeName(stem: string, index: IndexFile): string {
    const ext = this.extension;
    const taken = new Set([
      ...index.checkpoints.map((r) => r.file),
      ...index.pending.map((p) => p.record.file),
      ...index.deleting,
    ]);
    for (let version = 0; ; version++) {
      const name = `${version === 0 ? stem : `${stem}-v${version}`}${ext}`;
      if (!taken.has(name) && !existsSync(join(this.folder, name))) return name;
    }
  }

  /** Forgets deletions that are finished. */
  #tidy(index: IndexFile): void {
    if (index.deleting.length > 0)
      index.deleting = index.deleting.filter((file) => existsSync(join(this.folder, file)));
  }

  /** Waits for the background save, if any; throws if a background save failed. */
  async flush(): Promise<void> {
    await this.#queue;
    this.#throwFailure();
  }

  /** Flushes, then ends the experiment for hooks and the tracker. The manager cannot be used afterwards. */
  async close(status = 'completed'): Promise<void> {
    if (this.#closed) return;
    if (this.#o.readOnly) {
      this.#closed = true;
      this.#store.close();
      return;
    }
    try {
      await this.flush();
      // Leave a complete checkpoint_metadata.json: fold the journal into it.
      await this.#update((i) => this.#tidy(i));
      await this.#store.compact();
      if (this.#staging) await rm(this.#staging, { recursive: true, force: true });
      this.#store.close();
    } finally {
      this.#closed = true;
      await this.#notifyTracker('endExperiment', (t) => t.endExperiment?.(this.#o.experiment, status));
      await this.#emit('experimentEnd', { experiment: this.#o.experiment, status });
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #throwFailure(): void {
    if (this.#failure === undefined) return;
    const failure = this.#failure;
    this.#failure = undefined;
    throw failure;
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidArgumentError(`the CheckpointManager for ${this.#o.experiment} is closed`);
  }

  // --------------------------------------------------------------- reading

  /** The index, from the cache while it is fresh (`cache.ttlMs`), else from disk. */
  async #index(force = false): Promise<IndexFile> {
    const cached = force ? undefined : (this.#cache.get('index') as IndexFile | undefined);
    if (cached) return cached;
    const index = await this.#store.read();
    this.#remember(index);
    return index;
  }

  #remember(index: IndexFile): void {
    this.#cache.set('index', index);
  }

  /** A copy of a record for callers (changing it cannot change the index), with its absolute path. */
  #withPath(record: StoredRecord): CheckpointRecord {
    return {
      ...record,
      metrics: { ...record.metrics },
      tags: [...record.tags],
      ...(record.config !== undefined ? { config: structuredClone(record.config) } : {}),
      ...(record.backup ? { backup: { ...record.backup } } : {}),
      path: join(this.folder, record.file),
    };
  }

  /** The path to read a record's file through, confined to the experiment folder (FormatError when it escapes). */
  #readable(file: string): string {
    return readablePath(this.folder, file);
  }

  /** The path to write or delete a record's file at, confined to the experiment folder. */
  #writable(file: string): string {
    return writablePath(this.folder, file);
  }

  /** A locked change of the index; if it fails, the cached index (possibly half-changed) is dropped. */
  async #update<T>(
    change: (index: IndexFile, changes: Changes) => Promise<T> | T,
    options?: { write?: boolean; flush?: boolean },
  ): Promise<{ index: IndexFile; result: T }> {
    if (this.#o.readOnly) {
      throw new InvalidArgumentError(`${this.#o.experiment} was opened read-only: nothing in it can be changed`, {
        path: this.folder,
        expected: 'a manager opened without `readOnly`',
      });
    }
    try {
      return await this.#store.update(change, options);
    } catch (error) {
      this.#cache.delete('index');
      throw error;
    }
  }

  #info(record: CheckpointRecord): CheckpointInfo {
    return {
      id: record.id,
      path: record.path,
      format: record.format,
      epoch: record.epoch,
      step: record.step,
      metrics: { ...record.metrics },
      tags: [...record.tags],
      size: record.size,
      sha256: record.sha256,
      isBest: record.isBest,
      isLatest: record.isLatest,
    };
  }

  async #record(selector: Selector, fresh = false): Promise<CheckpointRecord> {
    const index = await this.#index(fresh);
    return this.#withPath(selectOrThrow(index.checkpoints, selector, this.#o.score, this.folder));
  }

  /** The checkpoints, oldest first unless sorted otherwise, filtered. */
  async list(filter: ListFilter = {}): Promise<CheckpointRecord[]> {
    const index = await this.#index();
    let records = index.checkpoints.map((r) => this.#withPath(r));
    const f = filter;
    records = records.filter(
      (r) =>
        (f.tag === undefined || r.tags.includes(f.tag)) &&
        (f.tags === undefined || f.tags.every((t) => r.tags.includes(t))) &&
        (f.epoch === undefined || r.epoch === f.epoch) &&
        (f.minEpoch === undefined || (r.epoch !== null && r.epoch >= f.minEpoch)) &&
        (f.maxEpoch === undefined || (r.epoch !== null && r.epoch <= f.maxEpoch)) &&
        (f.step === undefined || r.step === f.step) &&
        (f.status === undefined || r.status === f.status) &&
        (f.protected === undefined || r.protected === f.protected) &&
        (f.metric === undefined || inRange(r.metrics[f.metric.name], f.metric.min, f.metric.max)),
    );
    const key = sortKey(f.sortBy ?? 'sequence');
    const direction = f.order === 'desc' ? -1 : 1;
    records.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      if (x === y) return a.sequence - b.sequence;
      if (x === undefined) return 1; // records without the key go last
      if (y === undefined) return -1;
      return (x < y ? -1 : 1) * direction;
    });
    return f.limit === undefined ? records : records.slice(0, f.limit);
  }

  /** One checkpoint's record, or undefined. */
  async get(selector: Selector): Promise<CheckpointRecord | undefined> {
    try {
      return await this.#record(selector);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  /** The best checkpoint's record (by the manager's `best` setting), or undefined. */
  best(): Promise<CheckpointRecord | undefined> {
    return this.get('best');
  }

  latest(): Promise<CheckpointRecord | undefined> {
    return this.get('latest');
  }

  /** Reads a checkpoint (default: the latest). With `verifyIntegrity`, a digest mismatch is an IntegrityError. */
  async load(selector: Selector = 'latest', options: LoadOptions = {}): Promise<LoadedCheckpoint> {
    this.#assertOpen();
    const record = await this.#record(selector, true);
    const verify = options.verifyIntegrity ?? this.#o.verifyOnLoad;
    await this.#gate(
      'beforeLoad',
      {
        experiment: this.#o.experiment,
        record: this.#info(record),
        verifyIntegrity: verify,
      },
      `loading ${record.id}`,
    );
    if (record.status === 'missing' && !existsSync(record.path)) {
      throw new NotFoundError(`checkpoint ${record.id} is missing: ${record.path}`, {
        path: record.path,
        ...(record.backup ? { expected: 'the file; a backup exists: call restore()' } : {}),
      });
    }
    if (verify) {
      const result = await this.#verifyOne(record);
      if (result.status !== 'ok') {
        throw new IntegrityError(`checkpoint ${record.id} is ${result.status}: its SHA-256 does not match the record`, {
          path: record.path,
          expected: record.sha256,
          found: result.actual ?? 'no file',
        });
      }
    }
    const { state, metadata } = await this.#read(record, options.copy ?? false);
    await this.#emit('afterLoad', { experiment: this.#o.experiment, record: this.#info(record), state });
    return { record, state, metadata };
  }

  #backendFor(format: string): StorageBackend {
    if (format === this.#o.backend.name) return this.#o.backend;
    const registry = this.#o.registry;
    if (registry?.has(format)) return registry.get(format);
    throw new NotFoundError(`checkpoint format ${JSON.stringify(format)} has no backend here`, {
      expected: 'the backend registered in `registry`',
    });
  }

  async #read(
    record: CheckpointRecord,
    copy: boolean,
  ): Promise<{ state: StateTree; metadata: Record<string, string> }> {
    const backend = this.#backendFor(record.format);
    const path = this.#readable(record.file);
    if (!record.compression) {
      const loaded = await backend.load(path, { copy });
      return { state: loaded.state, metadata: loaded.metadata };
    }
    const staging = await makeStagingDir(this.folder);
    try {
      const plain = join(staging, basename(record.file, '.gz'));
      await gunzipFile(path, plain);
      const loaded = await backend.load(plain, { copy: true });
      return { state: loaded.state, metadata: loaded.metadata };
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** Reads a checkpoint's header: names, dtypes, shapes, metadata. Cached. */
  async inspect(selector: Selector = 'latest'): Promise<Inspection> {
    const record = await this.#record(selector);
    const key = `inspect:${record.id}:${record.sha256}`;
    const cached = this.#cache.get(key) as Inspection | undefined;
    if (cached) return cached;
    if (record.compression) {
      throw new UnsupportedError(`checkpoint ${record.id} is compressed: load it to see its tensors`);
    }
    const inspection = await this.#backendFor(record.format).inspect(this.#readable(record.file));
    this.#cache.set(key, inspection);
    return inspection;
  }

  /**
   * The latest checkpoint that verifies, loaded, so a crashed run continues.
   * Corrupted or missing ones are skipped with a warning. Null when none is usable.
   */
  async resume(options: { copy?: boolean } = {}): Promise<LoadedCheckpoint | null> {
    const index = await this.#index(true);
    const newestFirst = [...index.checkpoints].sort((a, b) => b.sequence - a.sequence);
    for (const stored of newestFirst) {
      const record = this.#withPath(stored);
      const result = await this.#verifyOne(record);
      if (result.status !== 'ok') {
        this.#o.warn(`resume: skipping checkpoint ${record.id}: ${result.status}`);
        continue;
      }
      try {
        return await this.load(record.id, { copy: options.copy ?? false, verifyIntegrity: false });
      } catch (error) {
        if (error instanceof VetoedError) throw error;
        this.#o.warn(`resume: skipping checkpoint ${record.id}: ${(error as Error).message}`);
      }
    }
    return null;
  }

  // ------------------------------------------------------------- integrity

  /** Checks size and SHA-256 of one checkpoint, or of all with `'all'`; records what it finds. */
  async verify(selector: Selector | 'all' = 'all'): Promise<VerifyResult[]> {
    const records =
      selector === 'all'
        ? (await this.#index(true)).checkpoints.map((r) => this.#withPath(r))
        : [await this.#record(selector, true)];
    const results: VerifyResult[] = [];
    for (const record of records) results.push(await this.#verifyOne(record));
    return results;
  }

  async #verifyOne(record: CheckpointRecord): Promise<VerifyResult> {
    await this.#emit('beforeIntegrityCheck', { experiment: this.#o.experiment, record: this.#info(record) });
    const result: VerifyResult = { id: record.id, status: 'ok', expected: record.sha256, path: record.path };
    let path: string | undefined;
    try {
      path = this.#readable(record.file);
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      result.status = 'corrupted'; // refused: what it points to is not this checkpoint's file
      result.problem = error.message;
    }
    const info = path === undefined ? undefined : await stat(path).catch(() => undefined);
    if (path !== undefined && !info) {
      result.status = 'missing';
    } else if (path !== undefined && info) {
      result.actual = await sha256File(path);
      if (result.actual !== record.sha256 || info.size !== record.size) result.status = 'corrupted';
    }
    if (result.status !== record.status && !this.#o.readOnly) await this.#setStatus(record.id, result.status);
    await this.#emit('afterIntegrityCheck', {
      experiment: this.#o.experiment,
      record: this.#info(record),
      status: result.status,
      expected: record.sha256,
      ...(result.actual ? { actual: result.actual } : {}),
    });
    return result;
  }

  async #setStatus(id: string, status: CheckpointStatus): Promise<void> {
    await this.#change(id, (record) => {
      record.status = status;
    });
  }

  // ----------------------------------------------------------- maintenance

  /** Changes one record under the lock and notifies the tracker. */
  async #change(selector: Selector, edit: (record: StoredRecord) => void): Promise<CheckpointRecord> {
    const { index, result } = await this.#update((index) => {
      this.#tidy(index);
      const found = selectOrThrow(index.checkpoints, selector, this.#o.score, this.folder);
      const copy = structuredClone(found); // records are replaced, never edited: the journal sees the change
      edit(copy);
      index.checkpoints[index.checkpoints.indexOf(found)] = copy;
      refreshFlags(index.checkpoints, this.#o.score);
      return index.checkpoints.find((r) => r.id === copy.id) as StoredRecord;
    });
    this.#remember(index);
    const record = this.#withPath(result);
    await this.#notifyTracker('updateCheckpoint', (t) => t.updateCheckpoint?.(record));
    return record;
  }

  /** Protects a checkpoint from retention. */
  protect(selector: Selector): Promise<CheckpointRecord> {
    return this.#change(selector, (r) => {
      r.protected = true;
    });
  }

  unprotect(selector: Selector): Promise<CheckpointRecord> {
    return this.#change(selector, (r) => {
      r.protected = false;
    });
  }

  tag(selector: Selector, ...tags: string[]): Promise<CheckpointRecord> {
    if (tags.some((t) => typeof t !== 'string' || t === ''))
      throw new InvalidArgumentError('tags must be non-empty strings');
    return this.#change(selector, (r) => {
      r.tags = [...new Set([...r.tags, ...tags])];
    });
  }

  untag(selector: Selector, ...tags: string[]): Promise<CheckpointRecord> {
    return this.#change(selector, (r) => {
      r.tags = r.tags.filter((t) => !tags.includes(t));
    });
  }

  describe(selector: Selector, description: string): Promise<CheckpointRecord> {
    return this.#change(selector, (r) => {
      r.description = description;
    });
  }

  /** The checkpoints retention would delete now (a dry run). */
  async retentionPlan(): Promise<CheckpointRecord[]> {
    return this.#doomed(await this.#index(true)).map((r) => this.#withPath(r));
  }

  #doomed(index: IndexFile): StoredRecord[] {
    const { retention, score } = this.#o;
    if (retention.length === 0) return [];
    const best = findBest(index.checkpoints, score);
    const latest = findLatest(index.checkpoints);
    const candidates = index.checkpoints.filter((r) => r.status === 'ok');
    const ordered = [...candidates].sort((a, b) => a.sequence - b.sequence).map((r) => this.#withPath(r));
    const kept = keepIfAny(...retention)(ordered, { score }); // a list keeps what any of its policies keeps
    return candidates.filter((r) => !kept.has(r.id) && r !== best && r !== latest && !r.protected);
  }

  /** Deletes what retention does not keep (never the best, the latest or protected ones); returns what went. */
  async applyRetention(): Promise<CheckpointRecord[]> {
    const doomed = this.#doomed(await this.#index(true));
    return this.#remove(
      doomed.map((r) => this.#withPath(r)),
      'retention',
    );
  }

  /** Deletes a checkpoint (and its backup). Protected ones need `force`. */
  async delete(selector: Selector, options: { force?: boolean } = {}): Promise<CheckpointRecord> {
    const record = await this.#record(selector, true);
    if (record.protected && !options.force) {
      throw new ConflictError(`checkpoint ${record.id} is protected: unprotect it or pass force`, {
        path: record.path,
      });
    }
    const [removed] = await this.#remove([record], 'user');
    if (!removed) throw new VetoedError('beforeDelete', 'a hook vetoed the deletion', `deleting ${record.id}`);
    return removed;
  }

  async #remove(records: CheckpointRecord[], reason: string): Promise<CheckpointRecord[]> {
    const approved: CheckpointRecord[] = [];
    for (const record of records) {
      const emitted = await this.#emit('beforeDelete', {
        experiment: this.#o.experiment,
        record: this.#info(record),
        reason,
      });
      if (emitted?.vetoed) {
        this.#o.warn(`not deleting ${record.id}: vetoed by hook ${emitted.vetoed.hook}: ${emitted.vetoed.reason}`);
        continue;
      }
      approved.push(record);
    }
    if (approved.length === 0) return [];
    const { index, result: removed } = await this.#update((index) => {
      this.#tidy(index);
      refreshFlags(index.checkpoints, this.#o.score);
      const ids = new Set(approved.map((r) => r.id));
      // Another process may have changed things: retention re-checks its invariants under the lock.
      const going = index.checkpoints.filter(
        (r) => ids.has(r.id) && (reason !== 'retention' || (!r.isBest && !r.isLatest && !r.protected)),
      );
      index.checkpoints = index.checkpoints.filter((r) => !going.includes(r));
      for (const r of going) index.deleting.push(r.file, ...(r.backup ? [r.backup.file] : []));
      refreshFlags(index.checkpoints, this.#o.score);
      return going;
    });
    this.#remember(index);
    const out: CheckpointRecord[] = [];
    for (const stored of removed) {
      const record = this.#withPath(stored);
      for (const file of [stored.file, ...(stored.backup ? [stored.backup.file] : [])]) {
        try {
          await rm(this.#writable(file), { force: true });
        } catch (error) {
          if (!(error instanceof FormatError)) throw error;
          this.#o.warn(`${this.#o.experiment}: ${error.message}`); // the record is gone; nothing outside is touched
        }
      }
      out.push(record);
      await this.#notifyTracker('removeCheckpoint', (t) => t.removeCheckpoint?.(this.#o.experiment, record.id));
      await this.#emit('afterDelete', { experiment: this.#o.experiment, record: this.#info(record), reason });
    }
    if (removed.some((r) => r.isBest)) await this.#syncBestFile();
    return out;
  }

  /** Keeps `best.<ext>` (for layouts that want it) naming the best checkpoint's file. */
  async #syncBestFile(): Promise<void> {
    const bestPath = this.bestPath;
    if (!bestPath) return;
    await this.#update(
      async (index) => {
        const best = findBest(
          index.checkpoints.filter((r) => r.status === 'ok'),
          this.#o.score,
        );
        if (best) await linkAtomically(this.#readable(best.file), bestPath, this.#o.fsync);
        else await rm(bestPath, { force: true });
      },
      { write: false },
    );
  }

  // --------------------------------------------------------------- copies

  /** Copies a checkpoint into the backup folder, checking the copy's digest. */
  async backup(selector: Selector): Promise<CheckpointRecord> {
    const record = await this.#record(selector, true);
    const file = `${this.#o.layout.backupFolder}/${record.file}`;
    const destination = this.#writable(file);
    await this.#gate(
      'beforeBackup',
      {
        experiment: this.#o.experiment,
        record: this.#info(record),
        destination,
      },
      `backing up ${record.id}`,
    );
    const { sha256 } = await copyVerified(this.#readable(record.file), destination, record.sha256, this.#o.fsync);
    const updated = await this.#change(record.id, (r) => {
      r.backup = { file, sha256, at: this.#o.now().toISOString() };
    });
    await this.#emit('afterBackup', {
      experiment: this.#o.experiment,
      record: this.#info(updated),
      destination,
      sha256,
    });
    return updated;
  }

  /** Replaces a missing or corrupted checkpoint with its verified backup. */
  async restore(selector: Selector): Promise<CheckpointRecord> {
    const record = await this.#record(selector, true);
    if (!record.backup) throw new NotFoundError(`checkpoint ${record.id} has no backup`, { path: record.path });
    await copyVerified(this.#readable(record.backup.file), this.#writable(record.file), record.sha256, this.#o.fsync);
    return this.#change(record.id, (r) => {
      r.status = 'ok';
    });
  }

  /**
   * Exports a checkpoint to `destination` (a folder): a verified copy, or,
   * with `format`, a conversion by a registered backend. Writes
   * `<id>.manifest.json` beside it with the record and the new digests.
   */
  async export(selector: Selector, destination: string, options: { format?: string } = {}): Promise<ExportResult> {
    const record = await this.#record(selector, true);
    const format = options.format ?? record.format;
    await this.#gate(
      'beforeExport',
      {
        experiment: this.#o.experiment,
        record: this.#info(record),
        destination,
        format,
      },
      `exporting ${record.id}`,
    );
    await mkdir(destination, { recursive: true });
    let files: ExportResult['files'];
    if (format === record.format) {
      const target = join(destination, record.file);
      const source = this.#readable(record.file);
      files = [{ path: target, ...(await copyVerified(source, target, record.sha256, this.#o.fsync)) }];
    } else {
      files = await this.#convert(record, destination, format);
    }
    const manifest = join(destination, `${record.id}.manifest.json`);
    const { path: _path, backup: _backup, ...described } = record;
    const body = {
      exportedAt: this.#o.now().toISOString(),
      format,
      files: files.map((f) => ({ file: relative(destination, f.path), size: f.size, sha256: f.sha256 })),
      source: described,
    };
    await writeFileAtomic(manifest, [Buffer.from(`${JSON.stringify(body, null, 2)}\n`)], { fsync: this.#o.fsync });
    const result = { destination, format, files, manifest };
    await this.#emit('afterExport', {
      experiment: this.#o.experiment,
      record: this.#info(record),
      destination,
      format,
      files,
    });
    return result;
  }

  async #convert(record: CheckpointRecord, destination: string, format: string): Promise<ExportResult['files']> {
    const registry = this.#o.registry;
    if (!registry?.has(format)) {
      throw new NotFoundError(`no storage backend named ${JSON.stringify(format)} to export to`, {
        expected: "the backend registered in the manager's `registry`",
      });
    }
    const to = registry.get(format);
    const ext = to.extensions.find((e) => !e.endsWith('.index.json')) ?? '';
    const target = join(destination, record.id + ext);
    const stored = this.#readable(record.file);
    let source = stored;
    const staging = record.compression ? await makeStagingDir(this.folder) : undefined;
    try {
      if (staging) {
        source = join(staging, basename(record.file, '.gz'));
        await gunzipFile(stored, source);
      }
      const converted = await convertCheckpoint(source, target, { registry, from: record.format, to: format });
      return converted.files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 }));
    } finally {
      if (staging) await rm(staging, { recursive: true, force: true });
    }
  }

  /** Metrics side by side, configuration differences and, with `tensors`, per-tensor differences from the first. */
  async compare(selectors: Selector[], options: { tensors?: boolean } = {}): Promise<Comparison> {
    if (!Array.isArray(selectors) || selectors.length < 2) {
      throw new InvalidArgumentError('compare: give at least two checkpoints');
    }
    const records = await Promise.all(selectors.map((s) => this.#record(s)));
    const comparison: Comparison = {
      ids: records.map((r) => r.id),
      ...compareMetrics(records),
      config: compareConfigs(records),
    };
    if (options.tensors) {
      const [first, ...rest] = records as [CheckpointRecord, ...CheckpointRecord[]];
      const base = (await this.#read(first, false)).state;
      comparison.tensors = {};
      for (const record of rest) {
        comparison.tensors[record.id] = compareTensors(base, (await this.#read(record, false)).state);
      }
    }
    return comparison;
  }

  /** Counts, sizes, best, latest, tags and problems. */
  async summary(): Promise<Summary> {
    const index = await this.#index(true);
    const records = index.checkpoints;
    const byTag: Record<string, number> = Object.create(null); // tags come from the index
    for (const r of records) for (const t of r.tags) byTag[t] = (byTag[t] ?? 0) + 1;
    const byStatus: Record<CheckpointStatus, number> = { ok: 0, missing: 0, corrupted: 0 };
    for (const r of records) byStatus[r.status]++;
    const best = findBest(records, this.#o.score);
    const latest = findLatest(records);
    return {
      experiment: this.#o.experiment,
      // The folder's own word first: a reader that opened it without naming the model must not report the default.
      model: latest?.model || index.model || this.#o.model,
      folder: this.folder,
      count: records.length,
      totalSize: records.reduce((sum, r) => sum + (r.status === 'missing' ? 0 : r.size), 0),
      best: best ? { id: best.id, metrics: { ...best.metrics } } : null,
      latest: latest ? { id: latest.id, epoch: latest.epoch, step: latest.step } : null,
      byTag,
      byStatus,
      problems: records.filter((r) => r.status !== 'ok').map((r) => ({ id: r.id, status: r.status })),
      protected: records.filter((r) => r.protected).length,
      backedUp: records.filter((r) => r.backup).length,
    };
  }

  /** Writes a JSON file into the experiment folder atomically (seed 001's config.json and friends). */
  async writeJson(name: string, value: unknown): Promise<string> {
    if (
      basename(name) !== name ||
      !name.endsWith('.json') ||
      name === this.#o.layout.indexFile ||
      name.startsWith('.')
    ) {
      throw new InvalidArgumentError(
        `writeJson: ${JSON.stringify(name)} must be a plain .json file name other than the index`,
      );
    }
    const path = join(this.folder, name);
    await writeFileAtomic(path, [Buffer.from(`${JSON.stringify(value, null, 2)}\n`)], { fsync: this.#o.fsync });
    return path;
  }

  // ------------------------------------------------------ hooks, tracker

  /** Emits a `before*` event and throws VetoedError when a hook vetoes `operation`. */
  async #gate<K extends keyof CheckpointEvents & string>(
    event: K,
    context: CheckpointEvents[K],
    operation: string,
  ): Promise<void> {
    const emitted = await this.#emit(event, context);
    if (emitted?.vetoed) throw new VetoedError(emitted.vetoed.hook, emitted.vetoed.reason, operation);
  }

  async #emit<K extends keyof CheckpointEvents & string>(
    event: K,
    context: CheckpointEvents[K],
  ): Promise<EmitResult | undefined> {
    const hooks = this.#o.hooks;
    if (!hooks) return undefined;
    const result = await hooks.emit(event, context);
    for (const failure of result.errors) {
      this.#o.warn(
        `hook ${failure.hook} failed on ${failure.event}: ${String((failure.error as Error)?.message ?? failure.error)}`,
      );
    }
    return result;
  }

  async #notifyTracker(
    what: string,
    call: (tracker: NonNullable<ResolvedOptions['tracker']>) => unknown,
  ): Promise<void> {
    const tracker = this.#o.tracker;
    if (!tracker) return;
    try {
      await call(tracker);
    } catch (error) {
      this.#o.warn(`tracker ${tracker.name} failed in ${what}: ${(error as Error)?.message ?? String(error)}`);
      await this.#emit('error', { event: `tracker.${what}`, error });
    }
  }
}

function inRange(value: number | undefined, min?: number, max?: number): boolean {
  if (value === undefined || Number.isNaN(value)) return false;
  return (min === undefined || value >= min) && (max === undefined || value <= max);
}

function sortKey(by: string): (r: CheckpointRecord) => number | string | undefined {
  if (by.startsWith('metric:')) {
    const name = by.slice('metric:'.length);
    return (r) => r.metrics[name];
  }
  switch (by) {
    case 'sequence':
      return (r) => r.sequence;
    case 'epoch':
      return (r) => r.epoch ?? undefined;
    case 'step':
      return (r) => r.step ?? undefined;
    case 'timestamp':
      return (r) => r.timestamp;
    case 'size':
      return (r) => r.size;
    default:
      throw new InvalidArgumentError(`list: cannot sort by ${JSON.stringify(by)}`, {
        expected: "sequence, epoch, step, timestamp, size or 'metric:<name>'",
      });
  }
}
