/**
 * The save pipeline: policy, hooks, the crash-safe write and what follows a
 * commit (tracker, best file, backups, retention). Saves run one at a time.
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
import { mkdir, rm } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { renameDurably } from '@ckpt/native';
import { InvalidArgumentError, shown, UnsupportedError } from '../errors.js';
import { parseSize } from '../size.js';
import type { SaveResult } from '../storage.js';
import type { StateTree } from '../tree.js';
import type { ManagerContext } from './context.js';
import { backup } from './copies.js';
import { applyRetention } from './deletion.js';
import type { RecordFacts } from './facts.js';
import { gzipFile, makeStagingDir, OWNER } from './files.js';
import { type RankSave, saveRank } from './gathering.js';
import { findBest, findLatest, flagAppended } from './ranking.js';
import type { CheckpointRecord, IndexFile, StoredFile, StoredRecord } from './record.js';
import { type Prepared, prepareSave, type SaveInput } from './save-input.js';
import { setIndexName } from './sets.js';
import { snapshotState } from './snapshot.js';

export type SaveOutcome =
  | { status: 'saved'; record: CheckpointRecord }
  | { status: 'skipped'; record: null; reason: string }
  | { status: 'pending'; record: null; done: Promise<SaveCompletion> };

/** How a background save ended; failures are also thrown by the next `save`, `flush` or `close`. */
export type SaveCompletion =
  | { status: 'saved'; record: CheckpointRecord }
  | { status: 'skipped'; record: null; reason: string }
  | { status: 'failed'; record: null; error: unknown };

type Saved = SaveOutcome & { status: 'saved' };
type Skipped = SaveOutcome & { status: 'skipped' };

/** The manager-wide shard size (`saveOptions.maxShardSize`), if any. */
function defaultShardSize(saveOptions: Record<string, unknown>): number | undefined {
  const value = saveOptions.maxShardSize;
  if (value === undefined) return undefined;
  if (typeof value !== 'number' && typeof value !== 'string') {
    throw new InvalidArgumentError('saveOptions.maxShardSize must be a size (bytes, or "5GB")', {
      found: shown(value),
    });
  }
  return parseSize(value, { what: 'saveOptions.maxShardSize' });
}

/** Where the record is written into the file's own metadata, so an orphaned file can be adopted. */
const RECORD_METADATA_KEY = 'ckpt_record';

export class SavePipeline {
  /** Saves run one at a time: each waits for the previous one's write. */
  #queue: Promise<unknown> = Promise.resolve();
  #failure: unknown;
  /** The staging folder for compressed saves, made on the first one. */
  #staging: string | undefined;

  constructor(private readonly ctx: ManagerContext) {}

  save(input: SaveInput): Promise<SaveOutcome> {
    const turn = this.#queue.then(() => this.#turn(input));
    this.#queue = turn.then((t) => t.writing).catch(() => undefined);
    return turn.then((t) => t.outcome);
  }

  /** Waits for the background save, if any; throws if a background save failed. */
  async flush(): Promise<void> {
    await this.#queue;
    this.#throwFailure();
  }

  /** Removes the staging folder (after `flush`). */
  async close(): Promise<void> {
    if (this.#staging) await rm(this.#staging, { recursive: true, force: true });
    this.#staging = undefined;
  }

  #throwFailure(): void {
    if (this.#failure === undefined) return;
    const failure = this.#failure;
    this.#failure = undefined;
    throw failure;
  }

  async #turn(input: SaveInput): Promise<{ outcome: SaveOutcome; writing?: Promise<unknown> }> {
    this.#throwFailure();
    const prepared = prepareSave(input);
    if (!input.force) {
      const reason = await this.#policyDecision(prepared);
      if (reason !== true) return { outcome: await this.#skipped(prepared, reason) };
    }
    const o = this.ctx.o;
    if (!o.async) return { outcome: await this.#write(prepared) };
    prepared.state = snapshotState(prepared.state, o.snapshot);
    const done: Promise<SaveCompletion> = this.#write(prepared).catch((error: unknown) => {
      this.#failure ??= error;
      return { status: 'failed', record: null, error };
    });
    return { outcome: { status: 'pending', record: null, done }, writing: done };
  }

  async #policyDecision(prepared: Prepared): Promise<true | string> {
    const { o } = this.ctx;
    if (!o.savePolicy) return true;
    const records = (await this.ctx.index()).checkpoints.map((r) => this.ctx.withPath(r));
    return o.savePolicy({
      epoch: prepared.epoch,
      step: prepared.step,
      metrics: prepared.metrics,
      now: o.now().getTime(),
      last: findLatest(records),
      best: findBest(records, o.score),
      score: o.score,
    });
  }

  async #skipped(prepared: Prepared, reason: string): Promise<Skipped> {
    await this.ctx.emit('checkpointSkipped', {
      experiment: this.ctx.o.experiment,
      epoch: prepared.epoch,
      step: prepared.step,
      metrics: prepared.metrics,
      reason,
    });
    return { status: 'skipped', record: null, reason };
  }

  async #write(prepared: Prepared): Promise<Saved | Skipped> {
    const { ctx } = this;
    const { o } = ctx;
    const started = performance.now();
    const timestamp = o.now();
    const shardSize = prepared.maxShardSize ?? defaultShardSize(o.saveOptions);
    // A multi-process save is always a set: one part per rank.
    const setIndex = shardSize === undefined && !prepared.gather ? undefined : setIndexName(o.backend);
    if (setIndex && o.compression) {
      throw new UnsupportedError('a sharded checkpoint cannot be gzip-compressed: save it without one of the two', {
        expected: 'maxShardSize or compression, not both',
      });
    }
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
      path: join(ctx.folder, this.#freeName(stem, await ctx.index(), ctx.store.facts(), setIndex)),
    };
    const emitted = await ctx.emit('beforeSave', before);
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

    /** The record to be, named and numbered (call under the lock). */
    const newRecord = (index: IndexFile): StoredRecord => {
      const file = this.#freeName(stem, index, ctx.store.facts(), setIndex);
      return {
        id: setIndex ? dirname(file) : file.slice(0, file.length - ctx.extension.length),
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
        // A sharded save's intent lists its index: recovery then knows to look for a folder.
        ...(setIndex ? { files: [{ file, size: 0, sha256: '' }] } : {}),
      };
    };
    if (prepared.gather)
      return this.#writeRank(
        { ...prepared, gather: prepared.gather },
        metadata,
        setIndex as string,
        newRecord,
        started,
      );

    const { result: intent } = await ctx.update(
      (index) => {
        ctx.tidy(index);
        const record = newRecord(index);
        index.pending.push({ owner: OWNER, record });
        return record;
      },
      { declared: true }, // an intent puts no record
    );
    try {
      const written = intent.files
        ? await this.#writeSet(intent, prepared.state, metadata, shardSize as number)
        : await this.#writeFile(intent, prepared.state, metadata);
      // Not flushed: if this entry is lost, recovery commits the file from the intent.
      const { index, result } = await ctx.update(
        (index, changes) => {
          index.pending = index.pending.filter((p) => p.record.id !== intent.id);
          const facts = ctx.store.facts();
          const previousBest = facts.best;
          index.checkpoints.push({ ...intent, ...written });
          const replaced = flagAppended(index.checkpoints, o.score, previousBest, facts.latest);
          // The record just pushed (flags are set by replacing records in place, never moving them).
          const stored = index.checkpoints[index.checkpoints.length - 1] as StoredRecord;
          for (const record of new Set([stored, ...replaced])) changes.put(record);
          const changed = new Set(replaced.map((r) => r.id));
          changed.delete(intent.id);
          return { stored, changed, previousBest };
        },
        { flush: false, declared: true },
      );
      const record = await this.#afterCommit(result.stored, index, result.changed, result.previousBest, started);
      return { status: 'saved', record };
    } catch (error) {
      if (!(await this.#isCommitted(intent.id))) {
        await ctx
          .update((index) => {
            index.pending = index.pending.filter((p) => p.record.id !== intent.id);
          })
          .catch(() => undefined); // recovery drops it otherwise
      }
      throw error;
    }
  }

  async #isCommitted(id: string): Promise<boolean> {
    return (await this.ctx.index().catch(() => undefined))?.checkpoints.some((r) => r.id === id) ?? false;
  }

  /** Writes the file under its final name (atomically, by the backend); returns its size and digest. */
  async #writeFile(
    intent: StoredRecord,
    state: StateTree,
    metadata: Record<string, string>,
  ): Promise<{ size: number; sha256: string }> {
    const { o, folder } = this.ctx;
    const path = join(folder, intent.file);
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
    this.#staging ??= await makeStagingDir(folder);
    const staged = join(this.#staging, basename(intent.file, '.gz'));
    try {
      single(await o.backend.save(staged, state, options));
      return await gzipFile(staged, path, o.fsync);
    } finally {
      await rm(staged, { force: true });
    }
  }

  /** This process's part of a multi-process save (gathering.ts); the rank that commits runs what follows a commit. */
  async #writeRank(
    prepared: RankSave['prepared'],
    metadata: Record<string, string>,
    setIndex: string,
    newRecord: RankSave['newRecord'],
    started: number,
  ): Promise<Saved> {
    const { ctx } = this;
    const { stored, committed } = await saveRank({ ctx, prepared, metadata, setIndex, newRecord });
    if (!committed) return { status: 'saved', record: ctx.withPath(stored) };
    const record = await this.#afterCommit(stored, await ctx.index(), new Set(), undefined, started);
    return { status: 'saved', record };
  }

  /**
   * Writes a sharded checkpoint: the backend writes every shard and the index
   * into a folder in staging, then that folder is renamed into place whole.
   */
  async #writeSet(
    intent: StoredRecord,
    state: StateTree,
    metadata: Record<string, string>,
    maxShardSize: number,
  ): Promise<{ size: number; sha256: string; files: StoredFile[] }> {
    const { o, folder } = this.ctx;
    const set = dirname(intent.file);
    this.#staging ??= await makeStagingDir(folder);
    const staged = join(this.#staging, set);
    await rm(staged, { recursive: true, force: true }); // this process's own, from a failed attempt
    await mkdir(staged);
    try {
      const options = { ...o.saveOptions, metadata, fsync: o.fsync, maxShardSize };
      const saved = await o.backend.save(join(staged, basename(intent.file)), state, options);
      const files = saved.files.map((f) => {
        const name = relative(staged, f.path);
        if (name.includes('/') || name.startsWith('..')) {
          throw new UnsupportedError(`the ${o.backend.name} backend wrote ${f.path} outside the checkpoint's folder`);
        }
        return { file: `${set}/${name}`, size: f.size, sha256: f.sha256 };
      });
      const index = files.find((f) => f.file === intent.file);
      if (!index) throw new UnsupportedError(`the ${o.backend.name} backend wrote no index at ${intent.file}`);
      const ordered = [...files.filter((f) => f !== index), index];
      await renameDurably(staged, join(folder, set), { fsync: o.fsync });
      return { size: ordered.reduce((sum, f) => sum + f.size, 0), sha256: index.sha256, files: ordered };
    } finally {
      await rm(staged, { recursive: true, force: true });
    }
  }

  /** Retention, the best file, backups, tracker and hooks, once a save is committed. */
  async #afterCommit(
    stored: StoredRecord,
    index: IndexFile,
    changed: Set<string>,
    previousBest: StoredRecord | undefined,
    started: number,
  ): Promise<CheckpointRecord> {
    const { ctx } = this;
    const { o } = ctx;
    const record = ctx.withPath(stored);
    await ctx.notifyTracker('recordCheckpoint', async (t) => {
      await t.recordCheckpoint(record);
      for (const other of index.checkpoints) {
        if (changed.has(other.id)) await t.updateCheckpoint?.(ctx.withPath(other));
      }
    });
    if (Object.keys(record.metrics).length > 0) {
      await ctx.notifyTracker('recordMetrics', (t) =>
        t.recordMetrics?.(o.experiment, record.metrics, { step: record.step, epoch: record.epoch }),
      );
    }
    if (record.isBest) {
      await ctx.syncBestFile();
      await ctx.emit('bestCheckpoint', {
        experiment: o.experiment,
        record: ctx.info(record),
        ...(previousBest ? { previous: ctx.info(ctx.withPath(previousBest)) } : {}),
        ...(o.best.monitor ? { monitor: o.best.monitor, value: record.metrics[o.best.monitor] } : {}),
      });
    }
    await ctx.emit('afterSave', {
      experiment: o.experiment,
      record: ctx.info(record),
      durationMs: performance.now() - started,
    });
    const backedUp = o.backup?.(record) ?? false;
    if (backedUp) await backup(ctx, record.id);
    if (o.retention.length > 0) await applyRetention(ctx);
    // Read back only when a backup or retention may have changed it (a lookup costs a scan).
    return backedUp || o.retention.length > 0 ? ((await ctx.find(record.id)) ?? record) : record;
  }

  /**
   * A file name not used by any record nor by a file on disk: `name`, then
   * `name-v1`, `name-v2`, ... A sharded checkpoint's is `<name>/<setIndex>`,
   * and its folder must be free too.
   */
  #freeName(stem: string, index: IndexFile, facts: RecordFacts, setIndex: string | undefined): string {
    const { folder, extension } = this.ctx;
    // The store's facts know every record's file without a scan; pending saves and deletions are few.
    const taken = (name: string) =>
      facts.hasFile(name) || index.pending.some((p) => p.record.file === name) || index.deleting.includes(name);
    for (let version = 0; ; version++) {
      const base = version === 0 ? stem : `${stem}-v${version}`;
      const name = setIndex ? `${base}/${setIndex}` : `${base}${extension}`;
      const onDisk = setIndex ? base : name;
      if (!taken(name) && !taken(base) && !existsSync(join(folder, onDisk))) return name;
    }
  }
}
