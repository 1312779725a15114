/**
 * The events ckpt emits and what each carries: the contract between the
 * packages that emit (@ckpt/core the checkpoint and experiment events, a
 * tracker the metric events, @ckpt/resolver-b2 the download and upload
 * events) and whatever listens (@ckpt/hooks' HookManager implements
 * `EventSink`). Contexts of `before*` events may be amended by hooks (add
 * metadata, change tags) and vetoed.
 */

/** A checkpoint as hooks see it (core's CheckpointRecord has these fields and more). */
export interface CheckpointInfo {
  id: string;
  path: string;
  format?: string;
  epoch?: number | null;
  step?: number | null;
  metrics: Record<string, number>;
  tags: string[];
  size?: number;
  sha256?: string;
  isBest?: boolean;
  isLatest?: boolean;
}

export interface BeforeSaveContext {
  experiment: string;
  model: string;
  epoch?: number | null;
  step?: number | null;
  metrics: Record<string, number>;
  tags: string[];
  description?: string;
  /** The state tree about to be written (tensors are `{ dtype, shape, data }`). */
  state: unknown;
  /** Metadata written with the checkpoint; hooks may add to it. */
  metadata: Record<string, string>;
  /** Where it will be written. */
  path: string;
}

export interface AfterSaveContext {
  experiment: string;
  record: CheckpointInfo;
  durationMs: number;
}

export interface BeforeLoadContext {
  experiment: string;
  record: CheckpointInfo;
  verifyIntegrity: boolean;
}

export interface AfterLoadContext {
  experiment: string;
  record: CheckpointInfo;
  state: unknown;
}

export interface BeforeIntegrityCheckContext {
  experiment: string;
  record: CheckpointInfo;
}

export interface AfterIntegrityCheckContext {
  experiment: string;
  record: CheckpointInfo;
  status: 'ok' | 'missing' | 'corrupted';
  expected?: string;
  actual?: string;
}

export interface BestCheckpointContext {
  experiment: string;
  record: CheckpointInfo;
  previous?: CheckpointInfo;
  monitor?: string;
  value?: number;
}

export interface CheckpointSkippedContext {
  experiment: string;
  epoch?: number | null;
  step?: number | null;
  metrics: Record<string, number>;
  reason: string;
}

export interface DeleteContext {
  experiment: string;
  record: CheckpointInfo;
  /** Why: 'retention', 'user', ... */
  reason: string;
}

export interface BackupContext {
  experiment: string;
  record: CheckpointInfo;
  destination: string;
}

export interface AfterBackupContext extends BackupContext {
  sha256: string;
}

export interface ExportContext {
  experiment: string;
  record: CheckpointInfo;
  destination: string;
  format: string;
}

export interface AfterExportContext extends ExportContext {
  files: Array<{ path: string; size: number; sha256: string }>;
}

export interface ExperimentStartContext {
  experiment: string;
  project?: string;
  config?: Record<string, unknown>;
}

export interface ExperimentEndContext {
  experiment: string;
  status: 'completed' | 'failed' | 'interrupted' | string;
}

export interface MetricLoggedContext {
  experiment: string;
  name: string;
  value: number;
  step?: number | null;
}

export interface ErrorContext {
  /** The failing hook, when a hook failed. */
  hook?: string;
  /** The event or operation that failed. */
  event: string;
  error: unknown;
}

export interface BeforeDownloadContext {
  bucket: string;
  key: string;
  destination: string;
  size?: number;
}

export interface AfterDownloadContext {
  bucket: string;
  key: string;
  path: string;
  size: number;
  sha256: string;
}

export interface BeforeUploadContext {
  path: string;
  bucket: string;
  key: string;
}

export interface AfterUploadContext extends BeforeUploadContext {
  size: number;
  sha256: string;
  /** True when the bucket already held the same bytes and nothing was sent. */
  skipped: boolean;
}

/** Every event, by name, with its context. */
export interface CheckpointEvents {
  beforeSave: BeforeSaveContext;
  afterSave: AfterSaveContext;
  beforeLoad: BeforeLoadContext;
  afterLoad: AfterLoadContext;
  beforeIntegrityCheck: BeforeIntegrityCheckContext;
  afterIntegrityCheck: AfterIntegrityCheckContext;
  bestCheckpoint: BestCheckpointContext;
  checkpointSkipped: CheckpointSkippedContext;
  beforeDelete: DeleteContext;
  afterDelete: DeleteContext;
  beforeBackup: BackupContext;
  afterBackup: AfterBackupContext;
  beforeExport: ExportContext;
  afterExport: AfterExportContext;
  experimentStart: ExperimentStartContext;
  experimentEnd: ExperimentEndContext;
  metricLogged: MetricLoggedContext;
  error: ErrorContext;
  beforeDownload: BeforeDownloadContext;
  afterDownload: AfterDownloadContext;
  beforeUpload: BeforeUploadContext;
  afterUpload: AfterUploadContext;
}

export type CheckpointEvent = keyof CheckpointEvents;

export const CHECKPOINT_EVENTS: readonly CheckpointEvent[] = [
  'beforeSave',
  'afterSave',
  'beforeLoad',
  'afterLoad',
  'beforeIntegrityCheck',
  'afterIntegrityCheck',
  'bestCheckpoint',
  'checkpointSkipped',
  'beforeDelete',
  'afterDelete',
  'beforeBackup',
  'afterBackup',
  'beforeExport',
  'afterExport',
  'experimentStart',
  'experimentEnd',
  'metricLogged',
  'error',
  'beforeDownload',
  'afterDownload',
  'beforeUpload',
  'afterUpload',
];

/** A listener that failed (or timed out) while an event was delivered. */
export interface EventFailure {
  hook: string;
  event: string;
  error: unknown;
  at: Date;
}

/** What delivering one event came to. */
export interface EmitResult {
  /** Set when a `before*` listener vetoed: its name and reason. */
  vetoed?: { hook: string; reason: string };
  /** Failures of listeners that are not required. */
  errors: EventFailure[];
}

/**
 * Where emitters send events: all an emitter needs to know of a listener.
 * @ckpt/hooks' HookManager is one; a test or an application may bring its own.
 */
export interface EventSink<Events extends object = CheckpointEvents> {
  emit<K extends keyof Events & string>(event: K, context: Events[K]): Promise<EmitResult>;
}
