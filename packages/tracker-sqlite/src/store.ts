/**
 * The tracking database: experiments, parameters, tags, metric points
 * (buffered and written in batches) and checkpoint records.
 */
import {
  type CheckpointRecord,
  ClosedError,
  checkName,
  checkPoint,
  checkStatus,
  currentGitCommit,
  currentHost,
  type ExperimentExport,
  type ExperimentInput,
  type ExperimentPage,
  type ExperimentQuery,
  exportText,
  type MetricBucket,
  type MetricPointRow,
  type MetricSummary,
  NotFoundError,
  type Statistics,
  type TrackedCheckpoint,
} from '@ckpt/core';
import type Database from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import { MetricBuffer } from './buffer.js';
import { type DatabaseOptions, openDatabase, sqliteFailure } from './database.js';
import { collectExport } from './export.js';
import { importInto } from './import.js';
import {
  bestCheckpoints,
  listCheckpoints,
  metricBuckets,
  metricHistory,
  metricSummaries,
  queryExperiments,
  statistics,
} from './queries.js';
import {
  EXPERIMENT_COLUMNS,
  type Experiment,
  type ExperimentRow,
  type ExperimentStatus,
  experimentFromRow,
} from './rows.js';
import { toJson } from './values.js';

export { ClosedError, type ExperimentInput } from '@ckpt/core';
export type { Experiment, ExperimentStatus };

export interface TrackingStoreOptions extends DatabaseOptions {
  /** Flush buffered metric points once this many are waiting (default 10 000). */
  maxBuffered?: number;
  /** Flush buffered points at least this often (default 1000 ms; 0: only on size, flush() and close()). */
  flushIntervalMs?: number;
  /** The metadata cache in front of experiment lookups (default 1000 entries, 5 s). */
  cache?: { max?: number; ttlMs?: number };
}

export class TrackingStore {
  readonly path: string;
  /** The schema version the file had before it was opened (0: new). */
  readonly upgradedFrom: number;
  readonly #db: Database.Database;
  readonly #buffer: MetricBuffer;
  readonly #cache: LRUCache<string, Experiment>;
  readonly #onExit = () => this.close();
  #closed = false;

  private constructor(opened: ReturnType<typeof openDatabase>, options: TrackingStoreOptions) {
    this.#db = opened.db;
    this.path = opened.path;
    this.upgradedFrom = opened.upgradedFrom;
    this.#cache = new LRUCache({ max: options.cache?.max ?? 1000, ttl: options.cache?.ttlMs ?? 5000 });
    this.#buffer = new MetricBuffer(this.#db, {
      maxBuffered: options.maxBuffered ?? 10_000,
      flushIntervalMs: options.flushIntervalMs ?? 1000,
    });
    // Buffered points are written at exit too (better-sqlite3 is synchronous, so this works in 'exit').
    process.once('exit', this.#onExit);
  }

  /** Opens (or creates) a tracking database file, upgrading an older schema. */
  static open(path: string, options: TrackingStoreOptions = {}): TrackingStore {
    try {
      return new TrackingStore(openDatabase(path, options), options);
    } catch (error) {
      throw sqliteFailure(error, path);
    }
  }

  /** The underlying connection, for queries of your own (read-only use recommended). */
  get db(): Database.Database {
    this.#assertOpen();
    return this.#db;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError(`the tracking database ${this.path}`);
  }

  // ----------------------------------------------------------- experiments

  /** Creates the experiment, or resumes it (status back to running; tags and config merged). */
  startExperiment(input: ExperimentInput): Experiment {
    this.#assertOpen();
    const name = checkName(input?.name, 'experiment name');
    const project = checkName(input.project ?? 'default', 'project');
    const now = Date.now();
    const id = this.#db
      .transaction(() => {
        const existing = this.#db
          .prepare('SELECT id, config FROM experiments WHERE project = ? AND name = ?')
          .get(project, name) as { id: number; config: string } | undefined;
        let experimentId: number;
        if (existing) {
          const config = { ...(JSON.parse(existing.config) as object), ...input.config };
          this.#db
            .prepare(
              `UPDATE experiments SET status = 'running', ended_at = NULL, config = ?,
               description = coalesce(?, description), host = ?, git_commit = coalesce(?, git_commit) WHERE id = ?`,
            )
            .run(
              toJson(config),
              input.description ?? null,
              input.host ?? currentHost(),
              input.gitCommit ?? currentGitCommit() ?? null,
              existing.id,
            );
          experimentId = existing.id;
        } else {
          experimentId = Number(
            this.#db
              .prepare(
                `INSERT INTO experiments (project, name, status, description, config, host, git_commit, started_at)
               VALUES (?, ?, 'running', ?, ?, ?, ?, ?)`,
              )
              .run(
                project,
                name,
                input.description ?? null,
                toJson(input.config ?? {}),
                input.host ?? currentHost(),
                input.gitCommit ?? currentGitCommit() ?? null,
                now,
              ).lastInsertRowid,
          );
        }
        this.#addTags(experimentId, input.tags ?? []);
        return experimentId;
      })
      .immediate();
    this.#invalidate(id);
    return this.getExperiment(id);
  }

  /** An experiment by id, or by name (and project, default `'default'`). */
  getExperiment(idOrName: number | string, project = 'default'): Experiment {
    this.#assertOpen();
    const key = typeof idOrName === 'number' ? `id:${idOrName}` : `name:${project}\u0000${idOrName}`;
    const cached = this.#cache.get(key);
    if (cached) return structuredClone(cached);
    const row = (
      typeof idOrName === 'number'
        ? this.#db.prepare(`SELECT ${EXPERIMENT_COLUMNS} FROM experiments e WHERE e.id = ?`).get(idOrName)
        : this.#db
            .prepare(`SELECT ${EXPERIMENT_COLUMNS} FROM experiments e WHERE e.project = ? AND e.name = ?`)
            .get(project, idOrName)
    ) as ExperimentRow | undefined;
    if (!row) {
      throw new NotFoundError(
        typeof idOrName === 'number'
          ? `no experiment with id ${idOrName} in ${this.path}`
          : `no experiment ${JSON.stringify(idOrName)} in project ${JSON.stringify(project)} of ${this.path}`,
        { path: this.path },
      );
    }
    const experiment = experimentFromRow(row);
    this.#cache.set(`id:${experiment.id}`, experiment);
    this.#cache.set(`name:${experiment.project}\u0000${experiment.name}`, experiment);
    return structuredClone(experiment);
  }

  #invalidate(id: number): void {
    for (const key of [...this.#cache.keys()]) {
      const value = this.#cache.peek(key);
      if (value?.id === id) this.#cache.delete(key);
    }
  }

  /** Sets the experiment's status and end time (now, unless it is `running`). */
  endExperiment(id: number, status: ExperimentStatus = 'completed'): Experiment {
    this.#assertOpen();
    checkStatus(status);
    this.flush();
    const changed = this.#db
      .prepare('UPDATE experiments SET status = ?, ended_at = ? WHERE id = ?')
      .run(status, status === 'running' ? null : Date.now(), id).changes;
    if (changed === 0) this.getExperiment(id); // throws NotFoundError
    this.#invalidate(id);
    return this.getExperiment(id);
  }

  #addTags(id: number, tags: readonly string[]): void {
    const insert = this.#db.prepare('INSERT OR IGNORE INTO experiment_tags (experiment_id, tag) VALUES (?, ?)');
    for (const tag of tags) insert.run(id, checkName(tag, 'tag'));
  }

  /** Adds tags, or with `replace` sets exactly these. */
  setTags(id: number, tags: readonly string[], options: { replace?: boolean } = {}): Experiment {
    this.#assertOpen();
    this.getExperiment(id);
    this.#db
      .transaction(() => {
        if (options.replace) this.#db.prepare('DELETE FROM experiment_tags WHERE experiment_id = ?').run(id);
        this.#addTags(id, tags);
      })
      .immediate();
    this.#invalidate(id);
    return this.getExperiment(id);
  }

  /** Records parameters (JSON values); a key logged again is replaced. */
  logParams(id: number, params: Record<string, unknown>): void {
    this.#assertOpen();
    this.getExperiment(id);
    const upsert = this.#db.prepare(
      'INSERT INTO params (experiment_id, key, value) VALUES (?, ?, ?) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value',
    );
    this.#db
      .transaction(() => {
        for (const [key, value] of Object.entries(params))
          upsert.run(id, checkName(key, 'param name'), toJson(value ?? null));
      })
      .immediate();
  }

  params(id: number): Record<string, unknown> {
    this.#assertOpen();
    const rows = this.#db
      .prepare('SELECT key, value FROM params WHERE experiment_id = ? ORDER BY key')
      .all(id) as Array<{
      key: string;
      value: string;
    }>;
    const params: Record<string, unknown> = Object.create(null);
    for (const r of rows) params[r.key] = JSON.parse(r.value);
    return params;
  }

  // ---------------------------------------------------------------- metrics

  /** Queues a metric point; it is written with the next batch. */
  logMetric(id: number, name: string, value: number, step?: number, timestamp?: number | Date): void {
    this.#assertOpen();
    checkPoint(name, value, step);
    this.#buffer.push(
      id,
      name,
      step,
      value,
      timestamp instanceof Date ? timestamp.getTime() : (timestamp ?? Date.now()),
    );
  }

  /** Writes the buffered points now, in one transaction. */
  flush(): void {
    if (this.#closed) return;
    this.#buffer.flush();
  }

  /** How many points wait in the buffer. */
  get buffered(): number {
    return this.#buffer.size;
  }

  // ------------------------------------------------------------ checkpoints

  /** Inserts or updates a checkpoint record (from a CheckpointManager) under an experiment. */
  recordCheckpoint(id: number, record: CheckpointRecord): void {
    this.#assertOpen();
    this.#checkpointStatements ??= this.#prepareCheckpointStatements();
    const { upsert, metric } = this.#checkpointStatements;
    this.#db
      .transaction(() => {
        const row = upsert.get({
          experiment: id,
          checkpoint: record.id,
          path: record.path,
          format: record.format,
          size: record.size,
          sha256: record.sha256,
          epoch: record.epoch,
          step: record.step,
          created: Date.parse(record.timestamp) || Date.now(),
          best: record.isBest ? 1 : 0,
          latest: record.isLatest ? 1 : 0,
          protected: record.protected ? 1 : 0,
          status: record.status,
          tags: JSON.stringify(record.tags),
          description: record.description ?? null,
        }) as { id: number };
        for (const [name, value] of Object.entries(record.metrics)) metric.run(row.id, name, value);
      })
      .immediate();
  }

  #checkpointStatements: { upsert: Database.Statement; metric: Database.Statement } | undefined;

  #prepareCheckpointStatements(): { upsert: Database.Statement; metric: Database.Statement } {
    const upsert = this.#db.prepare(
      `INSERT INTO checkpoints (experiment_id, checkpoint_id, path, format, size, sha256, epoch, step, created_at,
         is_best, is_latest, protected, status, tags, description)
       VALUES (@experiment, @checkpoint, @path, @format, @size, @sha256, @epoch, @step, @created,
         @best, @latest, @protected, @status, @tags, @description)
       ON CONFLICT (experiment_id, checkpoint_id) DO UPDATE SET
         path = excluded.path, format = excluded.format, size = excluded.size, sha256 = excluded.sha256,
         epoch = excluded.epoch, step = excluded.step, is_best = excluded.is_best, is_latest = excluded.is_latest,
         protected = excluded.protected, status = excluded.status, tags = excluded.tags,
         description = excluded.description, deleted_at = NULL
       RETURNING id`,
    );
    const metric = this.#db.prepare(
      'INSERT INTO checkpoint_metrics (checkpoint, name, value) VALUES (?, ?, ?) ON CONFLICT (checkpoint, name) DO UPDATE SET value = excluded.value',
    );
    return { upsert, metric };
  }

  /** Marks a checkpoint deleted (the row stays, with the time it went). */
  removeCheckpoint(id: number, checkpointId: string): void {
    this.#assertOpen();
    this.#db
      .prepare(
        'UPDATE checkpoints SET deleted_at = ?, is_best = 0, is_latest = 0 WHERE experiment_id = ? AND checkpoint_id = ?',
      )
      .run(Date.now(), id, checkpointId);
  }

  // ---------------------------------------------------------------- queries

  /** Experiments matching `query` (project, tags, status, config values, dates, a metric condition), sorted and paged. */
  experiments(query?: ExperimentQuery): ExperimentPage {
    this.#assertOpen();
    return queryExperiments(this.#db, query);
  }

  /** Every point of a metric, in step order. Buffered points are flushed first. */
  metricHistory(id: number, name: string, range?: { fromStep?: number; toStep?: number }): MetricPointRow[] {
    this.flush();
    this.#assertOpen();
    return metricHistory(this.#db, id, name, range);
  }

  /** A metric downsampled into `buckets` step spans with min, max and last value each. */
  metricBuckets(
    id: number,
    name: string,
    buckets: number,
    range?: { fromStep?: number; toStep?: number },
  ): MetricBucket[] {
    this.flush();
    this.#assertOpen();
    return metricBuckets(this.#db, id, name, buckets, range);
  }

  /** Each metric of an experiment: count, min, max, last. */
  metrics(id: number): MetricSummary[] {
    this.flush();
    this.#assertOpen();
    return metricSummaries(this.#db, id);
  }

  checkpoints(id: number, options?: { includeDeleted?: boolean }): TrackedCheckpoint[] {
    this.#assertOpen();
    return listCheckpoints(this.#db, id, options);
  }

  /** The best `n` checkpoints by a metric, across experiments (or one project). */
  bestCheckpoints(options: {
    metric: string;
    mode?: 'min' | 'max';
    n?: number;
    project?: string;
  }): TrackedCheckpoint[] {
    this.#assertOpen();
    return bestCheckpoints(this.#db, options);
  }

  statistics(options?: { project?: string }): Statistics {
    this.flush();
    this.#assertOpen();
    return statistics(this.#db, options);
  }

  /** An experiment with its params, metric points and checkpoints. */
  exportExperiment(id: number): ExperimentExport {
    this.flush();
    return collectExport(this.#db, this.getExperiment(id), this.params(id));
  }

  /** The same as JSON or CSV text. */
  export(id: number, format: 'json' | 'csv' = 'json'): string {
    return exportText(this.exportExperiment(id), format);
  }

  /** Writes a whole experiment exported from another database, in one transaction (see TrackingDatabase). */
  importExperiment(data: ExperimentExport): Experiment {
    this.#assertOpen();
    this.flush();
    const id = this.#db.transaction(() => importInto(this.#db, data)).immediate();
    return this.getExperiment(id);
  }

  /** Writes what is buffered and closes the database. Idempotent. */
  close(): void {
    if (this.#closed) return;
    try {
      this.#buffer.flush();
    } finally {
      this.#buffer.stop();
      this.#closed = true;
      process.removeListener('exit', this.#onExit);
      this.#db.close();
    }
  }
}

/**
 * The calls that reach the database: each turns SQLite's failures (a full
 * disk, a read-only file, a damaged database) into ckpt's typed errors naming
 * the file, in one place rather than in every method.
 */
const DATABASE_CALLS = [
  'startExperiment',
  'getExperiment',
  'endExperiment',
  'setTags',
  'logParams',
  'params',
  'logMetric',
  'flush',
  'recordCheckpoint',
  'removeCheckpoint',
  'experiments',
  'metricHistory',
  'metrics',
  'checkpoints',
  'bestCheckpoints',
  'statistics',
  'exportExperiment',
  'export',
  'importExperiment',
  'close',
] as const satisfies ReadonlyArray<keyof TrackingStore>;

for (const name of DATABASE_CALLS) {
  const call = TrackingStore.prototype[name] as (this: TrackingStore, ...args: unknown[]) => unknown;
  Object.defineProperty(TrackingStore.prototype, name, {
    value: function (this: TrackingStore, ...args: unknown[]) {
      try {
        return call.apply(this, args);
      } catch (error) {
        throw sqliteFailure(error, this.path);
      }
    },
    writable: true,
    configurable: true,
  });
}
