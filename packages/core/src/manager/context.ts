/**
 * What every part of the CheckpointManager shares: the resolved options, the
 * experiment folder, the index, confined paths, record copies for callers,
 * and the way out to hooks and the tracker. The manager's operations
 * (saving, loading, integrity, deletion, copies, queries) are functions over
 * one of these.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { InvalidArgumentError, NotFoundError, VetoedError } from '../errors.js';
import type { CheckpointEvents, CheckpointInfo, EmitResult } from '../events.js';
import type { Inspection, StorageBackend } from '../storage.js';
import { readablePath, writablePath } from './confine.js';
import { linkAtomically } from './files.js';
import { type Changes, IndexStore, type UpdateOptions } from './index-store.js';
import type { ResolvedOptions } from './options.js';
import { findBest, refreshFlags, type Selector, selectOrThrow } from './ranking.js';
import type { CheckpointRecord, IndexFile, StoredRecord } from './record.js';

export type Tracker = NonNullable<ResolvedOptions['tracker']>;

export class ManagerContext {
  readonly store: IndexStore;
  /** Headers read by `inspect`, keyed by id and digest (a changed file has a new digest). */
  readonly inspections: LRUCache<string, Inspection>;

  constructor(
    readonly o: ResolvedOptions,
    readonly folder: string,
  ) {
    this.store = new IndexStore(folder, o.layout.indexFile, {
      experiment: o.experiment,
      model: o.model,
      fsync: o.fsync,
      lockTimeoutMs: o.lockTimeoutMs,
    });
    this.inspections = new LRUCache({ max: o.cache.max, ttl: o.cache.ttlMs || 1 });
  }

  /** The extension checkpoint files get. */
  get extension(): string {
    const own = this.o.layout.extension ?? this.o.backend.extensions.find((e) => !e.endsWith('.index.json'));
    return (own ?? '.ckpt') + (this.o.compression ? '.gz' : '');
  }

  /** The stable copy of the best checkpoint (`best.pt`), for layouts that have one. */
  get bestPath(): string | undefined {
    const { layout } = this.o;
    return layout.bestFile ? join(this.folder, layout.bestFile(this.extension)) : undefined;
  }

  /** Names in the folder that are never checkpoint files. */
  reservedNames(): Set<string> {
    const names = new Set([this.o.layout.indexFile]);
    const best = this.bestPath;
    if (best) names.add(basename(best));
    return names;
  }

  // ----------------------------------------------------------------- index

  /**
   * The index. The store keeps it while the files on disk are unchanged (two
   * stats), so reading it is cheap and always current. Shared: change it only
   * inside `update` (a read-only manager marks statuses on it in memory).
   */
  index(): Promise<IndexFile> {
    return this.store.read();
  }

  /** A locked change of the index. */
  async update<T>(
    change: (index: IndexFile, changes: Changes) => Promise<T> | T,
    options?: UpdateOptions,
  ): Promise<{ index: IndexFile; result: T }> {
    if (this.o.readOnly) {
      throw new InvalidArgumentError(`${this.o.experiment} was opened read-only: nothing in it can be changed`, {
        path: this.folder,
        expected: 'a manager opened without `readOnly`',
      });
    }
    return this.store.update(change, options);
  }

  /** Forgets deletions that are finished. Call inside `update`. */
  tidy(index: IndexFile): void {
    if (index.deleting.length > 0)
      index.deleting = index.deleting.filter((file) => existsSync(join(this.folder, file)));
  }

  /** One record, for callers, by id, epoch, step or alias (NotFoundError when there is none). */
  async record(selector: Selector): Promise<CheckpointRecord> {
    const index = await this.index();
    return this.withPath(selectOrThrow(index.checkpoints, selector, this.o.score, this.folder));
  }

  /** One record or undefined. */
  async find(selector: Selector): Promise<CheckpointRecord | undefined> {
    try {
      return await this.record(selector);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  /** Changes one record under the lock and notifies the tracker. */
  async change(selector: Selector, edit: (record: StoredRecord) => void): Promise<CheckpointRecord> {
    const { result } = await this.update((index) => {
      this.tidy(index);
      const found = selectOrThrow(index.checkpoints, selector, this.o.score, this.folder);
      const copy = structuredClone(found); // records are replaced, never edited: the journal sees the change
      edit(copy);
      index.checkpoints[index.checkpoints.indexOf(found)] = copy;
      refreshFlags(index.checkpoints, this.o.score);
      return index.checkpoints.find((r) => r.id === copy.id) as StoredRecord;
    });
    const record = this.withPath(result);
    await this.notifyTracker('updateCheckpoint', (t) => t.updateCheckpoint?.(record));
    return record;
  }

  /** Keeps `best.<ext>` (for layouts that want it) naming the best checkpoint's file. */
  async syncBestFile(): Promise<void> {
    const bestPath = this.bestPath;
    if (!bestPath) return;
    await this.update(
      async (index) => {
        const best = findBest(
          index.checkpoints.filter((r) => r.status === 'ok'),
          this.o.score,
        );
        // A sharded best has no one file to name: `load('best')` finds it instead.
        if (best && !best.files) await linkAtomically(this.readable(best.file), bestPath, this.o.fsync);
        else await rm(bestPath, { force: true });
      },
      { write: false },
    );
  }

  // ---------------------------------------------------------------- records

  /** A copy of a record for callers (changing it cannot change the index), with its absolute path. */
  withPath(record: StoredRecord): CheckpointRecord {
    return {
      ...record,
      metrics: { ...record.metrics },
      tags: [...record.tags],
      ...(record.config !== undefined ? { config: structuredClone(record.config) } : {}),
      ...(record.backup ? { backup: { ...record.backup } } : {}),
      path: join(this.folder, record.file),
    };
  }

  /** What hooks are told about a checkpoint. */
  info(record: CheckpointRecord): CheckpointInfo {
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

  /** The path to read a record's file through, confined to the experiment folder (FormatError when it escapes). */
  readable(file: string): string {
    return readablePath(this.folder, file);
  }

  /** The path to write or delete a record's file at, confined to the experiment folder. */
  writable(file: string): string {
    return writablePath(this.folder, file);
  }

  /** The backend that reads `format`: the manager's own, or one from its registry. */
  backendFor(format: string): StorageBackend {
    if (format === this.o.backend.name) return this.o.backend;
    const registry = this.o.registry;
    if (registry?.has(format)) return registry.get(format);
    throw new NotFoundError(`checkpoint format ${JSON.stringify(format)} has no backend here`, {
      expected: 'the backend registered in `registry`',
    });
  }

  // ---------------------------------------------------------- hooks, tracker

  /** Emits a `before*` event and throws VetoedError when a hook vetoes `operation`. */
  async gate<K extends keyof CheckpointEvents & string>(
    event: K,
    context: CheckpointEvents[K],
    operation: string,
  ): Promise<void> {
    const emitted = await this.emit(event, context);
    if (emitted?.vetoed) throw new VetoedError(emitted.vetoed.hook, emitted.vetoed.reason, operation);
  }

  /** Tells the hooks; a hook's failure is a warning, never the operation's failure. */
  async emit<K extends keyof CheckpointEvents & string>(
    event: K,
    context: CheckpointEvents[K],
  ): Promise<EmitResult | undefined> {
    const hooks = this.o.hooks;
    if (!hooks) return undefined;
    const result = await hooks.emit(event, context);
    for (const failure of result.errors) {
      this.o.warn(
        `hook ${failure.hook} failed on ${failure.event}: ${String((failure.error as Error)?.message ?? failure.error)}`,
      );
    }
    return result;
  }

  /** Tells the tracker; its failure is a warning and an `error` event, never the operation's failure. */
  async notifyTracker(what: string, call: (tracker: Tracker) => unknown): Promise<void> {
    const tracker = this.o.tracker;
    if (!tracker) return;
    try {
      await call(tracker);
    } catch (error) {
      this.o.warn(`tracker ${tracker.name} failed in ${what}: ${(error as Error)?.message ?? String(error)}`);
      await this.emit('error', { event: `tracker.${what}`, error });
    }
  }
}
