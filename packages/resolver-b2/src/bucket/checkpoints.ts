/**
 * Checkpoints kept straight in a bucket (`s3://bucket/prefix`, or
 * `b2://…` through B2's S3 API), with no local folder in between:
 *
 * - save: the state is encoded in memory (the storage backend's `encode`),
 *   the upload's intent is recorded in the index, the bytes go up as a
 *   multipart upload hashed while it is cut into parts, and the record is
 *   committed to the index with a conditional write;
 * - load: the record's object is read with parallel ranged GETs into a local
 *   cache, checked against the record's SHA-256, then loaded from there;
 * - retention and delete remove objects remotely, journaled in the index;
 * - recovery (at open) aborts the uploads of writers that are gone and
 *   deletes what they left, so no multipart upload stays billed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  type ListMultipartUploadsCommandOutput,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  type CheckpointEvents,
  type CheckpointInfo,
  type CheckpointRecord,
  ConflictError,
  type EventSink,
  IntegrityError,
  type Loaded,
  NotFoundError,
  type SaveOptions,
  type SnapshotMode,
  type StateTree,
  type StorageBackend,
  snapshotState,
  type Tracker,
  UnsupportedError,
  type VerifyResult,
  VetoedError,
} from '@ckpt/core';
import {
  processAlive,
  processStartTime,
  processTableIdentity,
  renameDurably,
  sha256File,
  tempPathFor,
} from '@ckpt/native';
import { checkName } from '../cache.js';
import { downloadObject, headObject, status, type TransferOptions, withRetries } from '../transfer.js';
import { type BucketRecord, type IndexData, IndexObject, type PendingUpload } from './index-object.js';
import { checkDescription, checkRetention, checkSaveInput, checkTags, newId, parseLocation } from './input.js';
import { abortUpload, createUpload, type PartUploadOptions, partSizeOf, putWhole, uploadParts } from './multipart.js';
import { bestOf, latestOf, retire } from './ranking.js';

export type { BucketRecord } from './index-object.js';

export interface BucketCheckpointsOptions extends PartUploadOptions {
  /** `s3://bucket/prefix` or `b2://bucket/prefix`. */
  location: string;
  experiment: string;
  /** The format checkpoints are written in; it must be able to `encode` (safetensors can). */
  storage: StorageBackend;
  client: S3Client;
  /** Where loads are cached: `<cacheDir>/<experiment>/<id>/<file>`. */
  cacheDir: string;
  /** Keep only the newest this many checkpoints, besides the best and the protected ones (default: all). */
  keepLast?: number;
  /** Which checkpoint is best: the lowest ('min') or highest ('max') value of a metric. It is never retired. */
  best?: { monitor: string; mode: 'min' | 'max' };
  /**
   * Conditional writes (`If-Match` / `If-None-Match`) for the index and for
   * new objects. 'auto' (default) tries them at open and falls back to
   * plain writes with a warning where the server ignores them; 'required'
   * refuses such a server; 'off' never sends them. Without them, two
   * writers on one experiment can lose each other's index change.
   */
  conditionalWrites?: 'auto' | 'required' | 'off';
  /** An upload whose writer runs on another machine is taken for dead after this long (default 1 hour). */
  leaseMs?: number;
  /** Objects and uploads in the experiment that nothing refers to are removed once this old (default 1 hour). */
  orphanAfterMs?: number;
  saveOptions?: SaveOptions;
  /** Receives beforeSave (which may veto or add metadata), afterSave, before/afterLoad and before/afterDelete. */
  hooks?: EventSink<CheckpointEvents>;
  /**
   * Told of every checkpoint committed or deleted, as the CheckpointManager
   * tells it (a TrackedRun over SQLite, PostgreSQL or MySQL). The bucket's
   * index stays the truth: a tracker that fails gets a warning, and the save
   * or delete stands.
   */
  tracker?: Tracker;
  warn?: (message: string) => void;
}

export interface BucketSaveInput {
  state: StateTree;
  step: number;
  epoch?: number;
  metrics?: Record<string, number>;
  tags?: string[];
  /** Kept through retention until unprotected. */
  protect?: boolean;
  description?: string;
}

/** How a background save ended. */
export type BackgroundSave = { status: 'saved'; record: BucketRecord } | { status: 'failed'; error: unknown };

export interface BucketRecoveryReport {
  /** Uploads of writers that are gone, aborted. */
  abortedUploads: number;
  /** Objects nothing refers to (left by a writer that died, or a deletion cut short), deleted. */
  deletedObjects: number;
}

export class BucketCheckpoints {
  readonly bucket: string;
  /** `<prefix><experiment>/`: every key this manager touches starts with it. */
  readonly prefix: string;
  readonly #options: BucketCheckpointsOptions;
  readonly #index: IndexObject;
  readonly #fileName: string;
  /** The last background save: the next one starts after it. */
  #background: Promise<unknown> = Promise.resolve();
  readonly #failures: unknown[] = [];

  private constructor(options: BucketCheckpointsOptions, bucket: string, prefix: string, conditional: boolean) {
    this.#options = options;
    this.bucket = bucket;
    this.prefix = prefix;
    this.#index = new IndexObject(options.client, bucket, prefix, conditional, options);
    const extension = options.storage.extensions.find((e) => !e.includes('index')) ?? '.bin';
    this.#fileName = `checkpoint${extension}`;
  }

  get conditionalWrites(): boolean {
    return this.#index.conditional;
  }

  /** Opens (creating its index if needed) and recovers what writers that are gone left behind. */
  static async open(options: BucketCheckpointsOptions): Promise<BucketCheckpoints> {
    if (!options.storage.encode)
      throw new UnsupportedError(
        `the ${options.storage.name} backend cannot encode in memory: it cannot save to a bucket`,
      );
    checkName(options.experiment);
    checkRetention(options);
    const { bucket, prefix } = parseLocation(options.location);
    const experimentPrefix = `${prefix}${options.experiment}/`;
    const mode = options.conditionalWrites ?? 'auto';
    let conditional = mode !== 'off';
    if (conditional && !(await honoursConditions(options.client, bucket, experimentPrefix, options))) {
      if (mode === 'required')
        throw new UnsupportedError(`s3://${bucket} ignores conditional writes (If-None-Match), which were required`);
      options.warn?.(
        `s3://${bucket} ignores conditional writes: the index is written plainly, so two writers on ${options.experiment} could lose each other's change`,
      );
      conditional = false;
    }
    const checkpoints = new BucketCheckpoints(options, bucket, experimentPrefix, conditional);
    await checkpoints.#index.update(() => {}); // creates it if it is missing
    await checkpoints.recover();
    return checkpoints;
  }

  async list(): Promise<BucketRecord[]> {
    return (await this.#index.read()).index.records;
  }

  /**
   * Snapshots the state (`'copy'` by default; see core's `SnapshotMode`) and
   * saves it in the background, after the background saves before it. The
   * caller may change its tensors as soon as this returns. `done` never
   * rejects: it says how the save ended, and a failure is also thrown by the
   * next `flush`.
   */
  saveInBackground(
    input: BucketSaveInput,
    options: { snapshot?: SnapshotMode } = {},
  ): { done: Promise<BackgroundSave> } {
    checkSaveInput(input);
    const snapshot: BucketSaveInput = {
      ...input,
      state: snapshotState(input.state, options.snapshot ?? 'copy'),
      metrics: { ...input.metrics },
      tags: [...(input.tags ?? [])],
    };
    const done = this.#background.then(async (): Promise<BackgroundSave> => {
      try {
        return { status: 'saved', record: await this.save(snapshot) };
      } catch (error) {
        this.#failures.push(error);
        return { status: 'failed', error };
      }
    });
    this.#background = done;
    return { done };
  }

  /** Waits for the background saves; throws the first failure among them not thrown before. */
  async flush(): Promise<void> {
    await this.#background;
    const [failure] = this.#failures.splice(0);
    if (failure !== undefined) throw failure;
  }

  /** Encodes, uploads and commits one checkpoint; it is listed only once complete. */
  async save(input: BucketSaveInput): Promise<BucketRecord> {
    const options = this.#options;
    const tags = checkSaveInput(input);
    const id = newId(input.step);
    const key = `${this.prefix}${id}/${this.#fileName}`;
    const started = Date.now();
    const before = {
      experiment: this.#options.experiment,
      model: this.#options.experiment,
      epoch: input.epoch ?? 0,
      step: input.step,
      metrics: { ...input.metrics },
      tags,
      state: input.state,
      metadata: { ...options.saveOptions?.metadata },
      path: `s3://${this.bucket}/${key}`,
    };
    await this.#emit('beforeSave', before);
    const encoded = options.storage.encode?.(input.state, {
      ...options.saveOptions,
      metadata: before.metadata,
    }) as NonNullable<ReturnType<NonNullable<StorageBackend['encode']>>>;
    const client = options.client;
    const uploadId =
      encoded.size > partSizeOf(options) ? await createUpload(client, this.bucket, key, options) : undefined;
    const intent: PendingUpload = {
      id,
      key,
      ...(uploadId ? { uploadId } : {}),
      host: processTableIdentity(),
      pid: process.pid,
      pidStart: processStartTime(process.pid),
      started: Date.now(),
    };
    const upload = { ...options, conditional: this.#index.conditional };
    let sha256: string;
    try {
      await this.#index.update((index) => {
        if (!index.pending.some((p) => p.id === id)) index.pending.push(intent);
      });
      sha256 = uploadId
        ? await uploadParts(client, this.bucket, key, uploadId, encoded.chunks, encoded.size, upload)
        : await putWhole(client, this.bucket, key, encoded.chunks, encoded.size, upload);
      const stored = await headObject(client, this.bucket, key, options);
      if (stored?.size !== encoded.size)
        throw new ConflictError(
          `s3://${this.bucket}/${key} holds ${stored?.size ?? 'nothing'} bytes after its upload of ${encoded.size}`,
        );
    } catch (error) {
      // Nothing of it may stay: the upload is aborted (uploadParts did), the object and the intent go.
      if (uploadId) await abortUpload(client, this.bucket, key, uploadId).catch(() => undefined);
      await this.#deleteObject(key).catch(() => undefined);
      await this.#index
        .update((index) => {
          index.pending = index.pending.filter((p) => p.id !== id);
        })
        .catch(() => undefined);
      throw error;
    }
    const record: BucketRecord = {
      id,
      key,
      size: encoded.size,
      sha256,
      step: input.step,
      epoch: input.epoch ?? 0,
      metrics: { ...input.metrics },
      created: new Date().toISOString(),
      tags,
      protected: input.protect === true,
      ...(input.description === undefined ? {} : { description: input.description }),
    };
    let expired: BucketRecord[] = [];
    let kept: BucketRecord[] = [];
    await this.#index.update((index) => {
      index.pending = index.pending.filter((p) => p.id !== id);
      if (!index.records.some((r) => r.id === id)) index.records.push(record);
      expired = retire(index, options.keepLast, options.best);
      kept = index.records;
    });
    const isBest = bestOf(kept, options.best)?.id === id;
    await this.#tell('record', (tracker) => tracker.recordCheckpoint(this.#trackerRecord(record, isBest)));
    if (Object.keys(record.metrics).length > 0)
      await this.#tell('record', (tracker) =>
        tracker.recordMetrics?.(options.experiment, record.metrics, { step: record.step, epoch: record.epoch }),
      );
    await this.#emit('afterSave', {
      experiment: options.experiment,
      record: this.#info(record),
      durationMs: Date.now() - started,
    });
    for (const gone of expired) await this.#emit('beforeDelete', this.#deleteContext(gone, 'retention'));
    await this.#finishDeletions(expired.map((r) => r.key));
    for (const gone of expired) {
      await this.#tell('remove', (tracker) => tracker.removeCheckpoint?.(options.experiment, gone.id));
      await this.#emit('afterDelete', this.#deleteContext(gone, 'retention'));
    }
    return record;
  }

  /** A record as hooks see it. */
  #info(record: BucketRecord): CheckpointInfo {
    return {
      id: record.id,
      path: `s3://${this.bucket}/${record.key}`,
      format: this.#options.storage.name,
      epoch: record.epoch,
      step: record.step,
      metrics: { ...record.metrics },
      tags: [...record.tags],
      size: record.size,
      sha256: record.sha256,
    };
  }

  /** A record as trackers take it (the CheckpointManager's shape; the path is the object's URL). */
  #trackerRecord(record: BucketRecord, isBest: boolean): CheckpointRecord {
    return {
      id: record.id,
      sequence: 0,
      experiment: this.#options.experiment,
      model: this.#options.experiment,
      epoch: record.epoch,
      step: record.step,
      timestamp: record.created,
      file: record.key.slice(this.prefix.length),
      format: this.#options.storage.name,
      size: record.size,
      sha256: record.sha256,
      metrics: { ...record.metrics },
      tags: [...record.tags],
      ...(record.description === undefined ? {} : { description: record.description }),
      isBest,
      isLatest: true,
      protected: record.protected,
      status: 'ok',
      path: `s3://${this.bucket}/${record.key}`,
    };
  }

  /** Tells the tracker; its failure is a warning, never a failed save or delete. */
  async #tell(what: string, call: (tracker: Tracker) => unknown): Promise<void> {
    const tracker = this.#options.tracker;
    if (!tracker) return;
    try {
      await call(tracker);
    } catch (error) {
      this.#options.warn?.(`the tracker ${tracker.name} could not ${what} a checkpoint: ${(error as Error).message}`);
    }
  }

  #deleteContext(record: BucketRecord, reason: string) {
    return { experiment: this.#options.experiment, record: this.#info(record), reason };
  }

  async #emit<K extends keyof CheckpointEvents & string>(event: K, context: CheckpointEvents[K]): Promise<void> {
    const result = await this.#options.hooks?.emit(event, context);
    if (result?.vetoed) throw new VetoedError(result.vetoed.hook, result.vetoed.reason, event);
  }

  /** Deletes the objects, then clears them from the index's journal. */
  async #finishDeletions(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    for (const key of keys) await this.#deleteObject(key);
    await this.#index.update((index) => {
      index.deleting = index.deleting.filter((k) => !keys.includes(k));
    });
  }

  async #deleteObject(key: string): Promise<void> {
    await withRetries(`DELETE s3://${this.bucket}/${key}`, this.#options, () =>
      this.#options.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })),
    );
  }

  /** The record of `id`, of 'latest' (the highest step), or of 'best' (by the `best` option). */
  async record(id: string): Promise<BucketRecord> {
    const records = await this.list();
    const found =
      id === 'latest'
        ? latestOf(records)
        : id === 'best'
          ? bestOf(records, this.#options.best)
          : records.find((r) => r.id === id);
    if (!found) throw new NotFoundError(`no checkpoint ${id} in s3://${this.bucket}/${this.prefix}`, { found: id });
    return found;
  }

  /** Loads a checkpoint: from the cache when it holds the record's bytes, else by ranged GETs into it. */
  async load(id = 'latest'): Promise<Loaded & { record: BucketRecord; path: string }> {
    const record = await this.record(id);
    await this.#emit('beforeLoad', {
      experiment: this.#options.experiment,
      record: this.#info(record),
      verifyIntegrity: true,
    });
    const path = await this.#cached(record);
    const loaded = await this.#options.storage.load(path);
    await this.#emit('afterLoad', {
      experiment: this.#options.experiment,
      record: this.#info(record),
      state: loaded.state,
    });
    return { ...loaded, record, path };
  }

  /**
   * Checks checkpoints against their records: each object is read whole (into
   * the cache, where a later load finds it) and hashed. An object that is gone
   * is `missing`; one whose bytes differ is `corrupted`.
   */
  async verify(id: string | 'all' = 'all'): Promise<VerifyResult[]> {
    const records = id === 'all' ? await this.list() : [await this.record(id)];
    const results: VerifyResult[] = [];
    for (const record of records) {
      const path = `s3://${this.bucket}/${record.key}`;
      const result: VerifyResult = { id: record.id, status: 'ok', expected: record.sha256, path };
      try {
        this.#dropCached(record); // a cached copy proves nothing about the bucket
        await this.#cached(record);
        result.actual = record.sha256;
      } catch (error) {
        if (error instanceof NotFoundError) result.status = 'missing';
        else if (error instanceof IntegrityError) {
          result.status = 'corrupted';
          result.actual = error.found?.length === 64 ? error.found : undefined; // a digest, not a size
        } else throw error;
        result.problem = (error as Error).message;
      }
      results.push(result);
    }
    return results;
  }

  #cachePath(record: BucketRecord): string {
    const folder = join(this.#options.cacheDir, checkName(this.#options.experiment), checkName(record.id));
    return join(folder, this.#fileName);
  }

  #dropCached(record: BucketRecord): void {
    rmSync(this.#cachePath(record), { force: true });
  }

  /** The record's bytes in the cache, downloaded unless already there and whole; checked against its SHA-256. */
  async #cached(record: BucketRecord): Promise<string> {
    const path = this.#cachePath(record);
    if (existsSync(path) && statSync(path).size === record.size && (await sha256File(path)) === record.sha256)
      return path;
    mkdirSync(dirname(path), { recursive: true });
    rmSync(path, { force: true });
    const info = await headObject(this.#options.client, this.bucket, record.key, this.#options);
    if (!info) throw new NotFoundError(`s3://${this.bucket}/${record.key} is gone, though its record is there`);
    if (info.size !== record.size)
      throw new IntegrityError(
        `s3://${this.bucket}/${record.key} holds ${info.size} bytes, its record ${record.size}`,
        {
          path: `s3://${this.bucket}/${record.key}`,
          expected: String(record.size),
          found: String(info.size),
        },
      );
    const temporary = tempPathFor(path);
    try {
      // Checked against the record's digest, not the object's metadata.
      await downloadObject(
        this.#options.client,
        this.bucket,
        record.key,
        { ...info, sha256: record.sha256 },
        temporary,
        this.#options,
      );
      await renameDurably(temporary, path, { fsync: true });
    } finally {
      rmSync(temporary, { force: true });
    }
    return path;
  }

  /**
   * Deletes a checkpoint: its record first, then its object (journaled, so a
   * crash between is finished later). A protected one needs `force`.
   */
  async delete(id: string, options: { force?: boolean } = {}): Promise<void> {
    const record = await this.record(id);
    if (record.protected && !options.force)
      throw new ConflictError(`checkpoint ${record.id} is protected: unprotect it or pass force`, {
        path: `s3://${this.bucket}/${record.key}`,
      });
    await this.#emit('beforeDelete', this.#deleteContext(record, 'user'));
    await this.#index.update((index) => {
      index.records = index.records.filter((r) => r.id !== record.id);
      if (!index.deleting.includes(record.key)) index.deleting.push(record.key);
    });
    await this.#finishDeletions([record.key]);
    this.#dropCached(record);
    await this.#tell('remove', (tracker) => tracker.removeCheckpoint?.(this.#options.experiment, record.id));
    await this.#emit('afterDelete', this.#deleteContext(record, 'user'));
  }

  /** Keeps a checkpoint through retention until unprotected. */
  protect(id: string): Promise<BucketRecord> {
    return this.#change(id, (r) => {
      r.protected = true;
    });
  }

  unprotect(id: string): Promise<BucketRecord> {
    return this.#change(id, (r) => {
      r.protected = false;
    });
  }

  async tag(id: string, ...tags: string[]): Promise<BucketRecord> {
    checkTags(tags);
    return this.#change(id, (r) => {
      r.tags = checkTags([...new Set([...r.tags, ...tags])]);
    });
  }

  untag(id: string, ...tags: string[]): Promise<BucketRecord> {
    return this.#change(id, (r) => {
      r.tags = r.tags.filter((t) => !tags.includes(t));
    });
  }

  async describe(id: string, description: string): Promise<BucketRecord> {
    checkDescription(description);
    return this.#change(id, (r) => {
      r.description = description;
    });
  }

  /** Changes one record in the index (conditionally written, so concurrent changes are kept), and tells the tracker. */
  async #change(id: string, change: (record: BucketRecord) => void): Promise<BucketRecord> {
    const target = (await this.record(id)).id; // 'latest' and 'best' resolve once, before the change
    let changed: BucketRecord | undefined;
    let isBest = false;
    await this.#index.update((index) => {
      changed = index.records.find((r) => r.id === target);
      if (changed) change(changed);
      isBest = bestOf(index.records, this.#options.best)?.id === target;
    });
    if (!changed) throw new NotFoundError(`checkpoint ${target} was deleted while it was being changed`);
    const record = changed;
    await this.#tell('record', (tracker) => tracker.recordCheckpoint(this.#trackerRecord(record, isBest)));
    return record;
  }

  /**
   * Settles what writers that are gone left: their uploads are aborted and
   * their objects deleted, unfinished deletions are finished, and uploads or
   * objects in the experiment that nothing refers to are removed once older
   * than `orphanAfterMs`.
   */
  async recover(): Promise<BucketRecoveryReport> {
    const report: BucketRecoveryReport = { abortedUploads: 0, deletedObjects: 0 };
    const { index } = await this.#index.read();
    const lease = this.#options.leaseMs ?? 3_600_000;
    // On this machine a writer's process can be asked after; elsewhere only the lease tells.
    const gone = (p: PendingUpload) =>
      p.host === processTableIdentity() ? !processAlive(p.pid, p.pidStart) : Date.now() - p.started > lease;
    const dead = index.pending.filter(gone);
    for (const upload of dead) {
      if (upload.uploadId) {
        await abortUpload(this.#options.client, this.bucket, upload.key, upload.uploadId);
        report.abortedUploads++;
      }
      await this.#deleteObject(upload.key);
    }
    if (dead.length > 0) {
      const ids = new Set(dead.map((p) => p.id));
      await this.#index.update((current) => {
        current.pending = current.pending.filter((p) => !ids.has(p.id));
      });
    }
    report.deletedObjects += index.deleting.length;
    await this.#finishDeletions(index.deleting);
    const orphans = await this.#sweep(index, dead);
    report.abortedUploads += orphans.abortedUploads;
    report.deletedObjects += orphans.deletedObjects;
    return report;
  }

  /** Uploads and objects under the experiment that neither a record nor a live intent refers to. */
  async #sweep(index: IndexData, dead: readonly PendingUpload[]): Promise<BucketRecoveryReport> {
    const report: BucketRecoveryReport = { abortedUploads: 0, deletedObjects: 0 };
    const client = this.#options.client;
    const cutoff = Date.now() - (this.#options.orphanAfterMs ?? 3_600_000);
    const live = new Set(index.pending.filter((p) => !dead.includes(p)).map((p) => p.uploadId));
    let keyMarker: string | undefined;
    let uploadMarker: string | undefined;
    for (;;) {
      const page = await withRetries(`GET s3://${this.bucket}?uploads`, this.#options, async () => {
        try {
          return await client.send(
            new ListMultipartUploadsCommand({
              Bucket: this.bucket,
              Prefix: this.prefix,
              KeyMarker: keyMarker,
              UploadIdMarker: uploadMarker,
            }),
          );
        } catch (error) {
          if (status(error) !== 501) throw error;
          this.#options.warn?.(
            `s3://${this.bucket} cannot list multipart uploads: an upload whose writer died before recording it cannot be found and aborted here (set an abort rule for incomplete uploads on the bucket)`,
          );
          return { Uploads: [], IsTruncated: false } as Partial<ListMultipartUploadsCommandOutput>;
        }
      });
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key?.startsWith(this.prefix) || !upload.UploadId || live.has(upload.UploadId)) continue;
        if ((upload.Initiated?.getTime() ?? 0) > cutoff) continue;
        await abortUpload(client, this.bucket, upload.Key, upload.UploadId);
        report.abortedUploads++;
      }
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      uploadMarker = page.NextUploadIdMarker;
    }
    const referenced = new Set([
      this.#index.key,
      ...index.records.map((r) => r.key),
      ...index.pending.filter((p) => !dead.includes(p)).map((p) => p.key),
    ]);
    let token: string | undefined;
    for (;;) {
      const page = await withRetries(`GET s3://${this.bucket}?list-type=2`, this.#options, () =>
        client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, ContinuationToken: token })),
      );
      for (const object of page.Contents ?? []) {
        if (!object.Key?.startsWith(this.prefix) || referenced.has(object.Key)) continue;
        if ((object.LastModified?.getTime() ?? 0) > cutoff) continue;
        await this.#deleteObject(object.Key);
        report.deletedObjects++;
      }
      if (!page.IsTruncated) break;
      token = page.NextContinuationToken;
    }
    return report;
  }
}

/** Whether the server refuses a second `If-None-Match: *` write to one key (a probe object, removed after). */
async function honoursConditions(
  client: S3Client,
  bucket: string,
  prefix: string,
  options: TransferOptions,
): Promise<boolean> {
  const key = `${prefix}.ckpt-probe-${randomBytes(6).toString('hex')}`;
  const put = () =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: new Uint8Array(0), IfNoneMatch: '*' }));
  await withRetries(`PUT s3://${bucket}/${key}`, options, put);
  try {
    await put();
    return false;
  } catch (error) {
    if (status(error) === 412 || status(error) === 409) return true;
    if (status(error) === 501 || status(error) === 400) return false;
    throw error;
  } finally {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  }
}
