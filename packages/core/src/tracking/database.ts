/**
 * The contract every tracking database implements: @ckpt/tracker-sqlite,
 * @ckpt/tracker-postgres, @ckpt/tracker-mysql, and third-party ones proved by
 * `describeTracker` from @ckpt/testkit. Everything that may touch a network
 * is async; logging a metric point is not (it only queues the point), so the
 * hot path costs the same on every backend.
 */
import type { CheckpointRecord } from '../record.js';
import type {
  BestCheckpointsQuery,
  Experiment,
  ExperimentExport,
  ExperimentInput,
  ExperimentPage,
  ExperimentQuery,
  ExperimentStatus,
  MetricBucket,
  MetricPointRow,
  MetricSummary,
  Statistics,
  StepRange,
  TrackedCheckpoint,
} from './types.js';

export interface TrackingDatabase {
  /** `sqlite`, `postgres`, `mysql`, or a third party's name. */
  readonly kind: string;
  /** Where the database is: a path, or a URL with its password masked (safe to print). */
  readonly location: string;
  /** The schema version the database had before it was opened (0: new). */
  readonly upgradedFrom: number;
  readonly closed: boolean;

  // ------------------------------------------------------------- writing
  /** Creates the experiment, or resumes it (status back to running; tags and config merged). */
  startExperiment(input: ExperimentInput): Promise<Experiment>;
  /** Sets the experiment's status and end time (now, unless `running`); buffered points are written first. */
  endExperiment(id: number, status?: ExperimentStatus): Promise<Experiment>;
  /** Adds tags, or with `replace` sets exactly these. */
  setTags(id: number, tags: readonly string[], options?: { replace?: boolean }): Promise<Experiment>;
  /** Records parameters (JSON values); a key logged again is replaced. */
  logParams(id: number, params: Record<string, unknown>): Promise<void>;
  /**
   * Queues a metric point, written with the next batch (when the buffer is
   * full, on a timer, on `flush()` and `close()`). Returns a promise when a
   * batch is being written and the caller may wait for it (back-pressure);
   * the promise never rejects: a failed write keeps the points and reports at
   * the next `flush()`.
   */
  logMetric(
    id: number,
    name: string,
    value: number,
    step?: number,
    timestamp?: number | Date,
  ): Promise<void> | undefined;
  /** Writes the queued points now. Resolves once they are stored. */
  flush(): Promise<void>;
  /** Points queued and not yet stored. */
  readonly buffered: number;
  /** Inserts or updates a checkpoint record (from a CheckpointManager) under an experiment. */
  recordCheckpoint(id: number, record: CheckpointRecord): Promise<void>;
  /** Marks a checkpoint deleted (the row stays, with the time it went). */
  removeCheckpoint(id: number, checkpointId: string): Promise<void>;
  /**
   * Writes a whole experiment as exported from another database (`ckpt db
   * copy`): status, times, params, every point and checkpoint, in one
   * transaction. Refuses (ConflictError) when the project already has one of
   * that name.
   */
  importExperiment(data: ExperimentExport): Promise<Experiment>;

  // ------------------------------------------------------------- reading
  /** An experiment by id, or by name (and project, default `'default'`). NotFoundError when missing. */
  getExperiment(idOrName: number | string, project?: string): Promise<Experiment>;
  params(id: number): Promise<Record<string, unknown>>;
  /** Experiments matching `query`, sorted and paged. */
  experiments(query?: ExperimentQuery): Promise<ExperimentPage>;
  /** Every point of a metric, in step order (buffered points written first). */
  metricHistory(id: number, name: string, range?: StepRange): Promise<MetricPointRow[]>;
  /** A metric downsampled into `buckets` step spans with min, max and last value each. */
  metricBuckets(id: number, name: string, buckets: number, range?: StepRange): Promise<MetricBucket[]>;
  /** Each metric of an experiment: count, min, max, last. */
  metrics(id: number): Promise<MetricSummary[]>;
  checkpoints(id: number, options?: { includeDeleted?: boolean }): Promise<TrackedCheckpoint[]>;
  /** The best `n` checkpoints by a metric, across experiments (or one project); deleted ones excluded. */
  bestCheckpoints(query: BestCheckpointsQuery): Promise<TrackedCheckpoint[]>;
  statistics(options?: { project?: string }): Promise<Statistics>;
  /** An experiment with its params, metric points and checkpoints. */
  exportExperiment(id: number): Promise<ExperimentExport>;
  /** The same as JSON or CSV text. */
  export(id: number, format?: 'json' | 'csv'): Promise<string>;

  /** Writes what is queued and closes. Idempotent. */
  close(): Promise<void>;
}

/** What a tracker package exports as `connect`: open (and migrate) the database a URL names. */
export type ConnectTracking<Options = Record<string, unknown>> = (
  url: string,
  options?: Options & { readonly?: boolean },
) => Promise<TrackingDatabase>;
