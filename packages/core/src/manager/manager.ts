/**
 * The CheckpointManager: saves under policies, tracks best and latest,
 * retains, verifies, backs up, exports and resumes, over any storage backend.
 *
 * This class is the public face; each responsibility lives in its own module
 * over a shared ManagerContext: save-input and save-pipeline (the crash-safe
 * save protocol is described there), loading, integrity, deletion (retention
 * too), copies (backup, restore, export, compare), queries and opening.
 */
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '@ckpt/native';
import { InvalidArgumentError } from '../errors.js';
import type { Inspection } from '../storage.js';
import type { Comparison } from './compare.js';
import { ManagerContext } from './context.js';
import { backup, compareCheckpoints, type ExportResult, exportCheckpoint, restore } from './copies.js';
import { applyRetention, deleteCheckpoint, retentionPlan } from './deletion.js';
import { type VerifyResult, verify } from './integrity.js';
import { inspect, type LoadedCheckpoint, type LoadOptions, load, resume } from './loading.js';
import { openExperiment } from './opening.js';
import { type CheckpointManagerOptions, resolveOptions } from './options.js';
import { countRecords, type ListFilter, listRecords, type Summary, summarize } from './queries.js';
import type { Selector } from './ranking.js';
import type { CheckpointRecord } from './record.js';
import type { RecoveryReport } from './recovery.js';
import type { SaveInput } from './save-input.js';
import { type SaveOutcome, SavePipeline } from './save-pipeline.js';

export type { ExportResult } from './copies.js';
export type { VerifyResult } from './integrity.js';
export type { LoadedCheckpoint, LoadOptions } from './loading.js';
export type { ListFilter, Summary } from './queries.js';
export type { SaveInput } from './save-input.js';
export type { SaveCompletion, SaveOutcome } from './save-pipeline.js';

export class CheckpointManager {
  readonly #ctx: ManagerContext;
  readonly #saves: SavePipeline;
  readonly #recovery: RecoveryReport;
  #closed = false;
  /** The experiment's folder. */
  readonly folder: string;

  private constructor(ctx: ManagerContext, recovery: RecoveryReport) {
    this.#ctx = ctx;
    this.#saves = new SavePipeline(ctx);
    this.#recovery = recovery;
    this.folder = ctx.folder;
  }

  /** Opens (or starts) an experiment: checks the options, reconciles the folder with the index. */
  static async open(options: CheckpointManagerOptions): Promise<CheckpointManager> {
    const resolved = resolveOptions(options);
    const folder = join(
      resolved.root,
      resolved.layout.folder({ experiment: resolved.experiment, model: resolved.model }),
    );
    if (!resolved.readOnly) await mkdir(folder, { recursive: true });
    const ctx = new ManagerContext(resolved, folder);
    return new CheckpointManager(ctx, await openExperiment(ctx));
  }

  get experiment(): string {
    return this.#ctx.o.experiment;
  }

  get model(): string {
    return this.#ctx.o.model;
  }

  /** What reconciling the folder found and did when the manager opened. */
  get recovery(): RecoveryReport {
    return this.#recovery;
  }

  /** The extension checkpoint files get. */
  get extension(): string {
    return this.#ctx.extension;
  }

  /** The stable copy of the best checkpoint (`best.pt`), for layouts that have one. */
  get bestPath(): string | undefined {
    return this.#ctx.bestPath;
  }

  // ---------------------------------------------------------------- saving

  /**
   * Saves a checkpoint, or skips it with the reason when the save policy or
   * a `beforeSave` hook says so. In async mode it returns once the state is
   * snapshotted, with `done` resolving when the write is committed.
   */
  save(input: SaveInput): Promise<SaveOutcome> {
    this.#assertOpen();
    return this.#saves.save(input);
  }

  /** Waits for the background save, if any; throws if a background save failed. */
  flush(): Promise<void> {
    return this.#saves.flush();
  }

  /** Flushes, then ends the experiment for hooks and the tracker. The manager cannot be used afterwards. */
  async close(status = 'completed'): Promise<void> {
    if (this.#closed) return;
    const ctx = this.#ctx;
    if (ctx.o.readOnly) {
      this.#closed = true;
      ctx.store.close();
      return;
    }
    try {
      await this.#saves.flush();
      // Leave a complete checkpoint_metadata.json: fold the journal into it.
      await ctx.update((i) => ctx.tidy(i));
      await ctx.store.compact();
      await this.#saves.close();
      ctx.store.close();
    } finally {
      this.#closed = true;
      await ctx.notifyTracker('endExperiment', (t) => t.endExperiment?.(ctx.o.experiment, status));
      await ctx.emit('experimentEnd', { experiment: ctx.o.experiment, status });
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidArgumentError(`the CheckpointManager for ${this.experiment} is closed`);
  }

  // --------------------------------------------------------------- reading

  /** The checkpoints, oldest first unless sorted otherwise, filtered. */
  list(filter: ListFilter = {}): Promise<CheckpointRecord[]> {
    return listRecords(this.#ctx, filter);
  }

  /** How many checkpoints pass `filter` (for paging a list). */
  count(filter: ListFilter = {}): Promise<number> {
    return countRecords(this.#ctx, filter);
  }

  /** One checkpoint's record, or undefined. */
  get(selector: Selector): Promise<CheckpointRecord | undefined> {
    return this.#ctx.find(selector);
  }

  /** The best checkpoint's record (by the manager's `best` setting), or undefined. */
  best(): Promise<CheckpointRecord | undefined> {
    return this.get('best');
  }

  latest(): Promise<CheckpointRecord | undefined> {
    return this.get('latest');
  }

  /** Reads a checkpoint (default: the latest). With `verifyIntegrity`, a digest mismatch is an IntegrityError. */
  load(selector: Selector = 'latest', options: LoadOptions = {}): Promise<LoadedCheckpoint> {
    this.#assertOpen();
    return load(this.#ctx, selector, options);
  }

  /** Reads a checkpoint's header: names, dtypes, shapes, metadata. Cached. */
  inspect(selector: Selector = 'latest'): Promise<Inspection> {
    return inspect(this.#ctx, selector);
  }

  /**
   * The latest checkpoint that verifies, loaded, so a crashed run continues.
   * Corrupted or missing ones are skipped with a warning. Null when none is usable.
   */
  resume(options: { copy?: boolean } = {}): Promise<LoadedCheckpoint | null> {
    this.#assertOpen();
    return resume(this.#ctx, options);
  }

  /** Counts, sizes, best, latest, tags and problems. */
  summary(): Promise<Summary> {
    return summarize(this.#ctx);
  }

  // ------------------------------------------------------------- integrity

  /** Checks size and SHA-256 of one checkpoint, or of all with `'all'`; records what it finds. */
  verify(selector: Selector | 'all' = 'all'): Promise<VerifyResult[]> {
    return verify(this.#ctx, selector);
  }

  // ----------------------------------------------------------- maintenance

  /** Protects a checkpoint from retention. */
  protect(selector: Selector): Promise<CheckpointRecord> {
    return this.#ctx.change(selector, (r) => {
      r.protected = true;
    });
  }

  unprotect(selector: Selector): Promise<CheckpointRecord> {
    return this.#ctx.change(selector, (r) => {
      r.protected = false;
    });
  }

  tag(selector: Selector, ...tags: string[]): Promise<CheckpointRecord> {
    if (tags.some((t) => typeof t !== 'string' || t === ''))
      throw new InvalidArgumentError('tags must be non-empty strings');
    return this.#ctx.change(selector, (r) => {
      r.tags = [...new Set([...r.tags, ...tags])];
    });
  }

  untag(selector: Selector, ...tags: string[]): Promise<CheckpointRecord> {
    return this.#ctx.change(selector, (r) => {
      r.tags = r.tags.filter((t) => !tags.includes(t));
    });
  }

  describe(selector: Selector, description: string): Promise<CheckpointRecord> {
    return this.#ctx.change(selector, (r) => {
      r.description = description;
    });
  }

  /** The checkpoints retention would delete now (a dry run). */
  retentionPlan(): Promise<CheckpointRecord[]> {
    return retentionPlan(this.#ctx);
  }

  /** Deletes what retention does not keep (never the best, the latest or protected ones); returns what went. */
  applyRetention(): Promise<CheckpointRecord[]> {
    return applyRetention(this.#ctx);
  }

  /** Deletes a checkpoint (and its backup). Protected ones need `force`. */
  delete(selector: Selector, options: { force?: boolean } = {}): Promise<CheckpointRecord> {
    return deleteCheckpoint(this.#ctx, selector, options);
  }

  // --------------------------------------------------------------- copies

  /** Copies a checkpoint into the backup folder, checking the copy's digest. */
  backup(selector: Selector): Promise<CheckpointRecord> {
    return backup(this.#ctx, selector);
  }

  /** Replaces a missing or corrupted checkpoint with its verified backup. */
  restore(selector: Selector): Promise<CheckpointRecord> {
    return restore(this.#ctx, selector);
  }

  /**
   * Exports a checkpoint to `destination` (a folder): a verified copy, or,
   * with `format`, a conversion by a registered backend. Writes
   * `<id>.manifest.json` beside it with the record and the new digests.
   */
  export(selector: Selector, destination: string, options: { format?: string } = {}): Promise<ExportResult> {
    return exportCheckpoint(this.#ctx, selector, destination, options);
  }

  /** Metrics side by side, configuration differences and, with `tensors`, per-tensor differences from the first. */
  compare(selectors: Selector[], options: { tensors?: boolean } = {}): Promise<Comparison> {
    return compareCheckpoints(this.#ctx, selectors, options);
  }

  /** Writes a JSON file into the experiment folder atomically (seed 001's config.json and friends). */
  async writeJson(name: string, value: unknown): Promise<string> {
    const { o } = this.#ctx;
    if (basename(name) !== name || !name.endsWith('.json') || name === o.layout.indexFile || name.startsWith('.')) {
      throw new InvalidArgumentError(
        `writeJson: ${JSON.stringify(name)} must be a plain .json file name other than the index`,
      );
    }
    const path = join(this.folder, name);
    await writeFileAtomic(path, [Buffer.from(`${JSON.stringify(value, null, 2)}\n`)], { fsync: o.fsync });
    return path;
  }
}
