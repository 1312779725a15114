/** What a tracking database holds, as every tracker returns it. */

export type ExperimentStatus = 'running' | 'completed' | 'failed' | 'interrupted';
export const STATUSES: readonly ExperimentStatus[] = ['running', 'completed', 'failed', 'interrupted'];

export interface Experiment {
  id: number;
  project: string;
  name: string;
  status: ExperimentStatus;
  description: string | undefined;
  config: Record<string, unknown>;
  tags: string[];
  host: string | undefined;
  gitCommit: string | undefined;
  startedAt: Date;
  endedAt: Date | undefined;
}

export interface ExperimentInput {
  name: string;
  /** Default `'default'`. */
  project?: string;
  tags?: string[];
  config?: Record<string, unknown>;
  description?: string;
  /** Default: `git rev-parse HEAD` in the working folder, when it is a repository. */
  gitCommit?: string;
  /** Default: this machine's name. */
  host?: string;
}

export type MetricComparison = { lt?: number; lte?: number; gt?: number; gte?: number; eq?: number };

export interface ExperimentQuery {
  project?: string;
  /** Has this tag. */
  tag?: string;
  /** Has every one of these tags. */
  tags?: string[];
  status?: ExperimentStatus | ExperimentStatus[];
  /** Configuration values by dotted path: `{ 'optimizer.lr': 0.001 }`. */
  config?: Record<string, string | number | boolean | null>;
  startedAfter?: Date | number;
  startedBefore?: Date | number;
  /**
   * A condition on a metric's summary: `{ name: 'val_loss', of: 'min', lt: 0.3 }`
   * ("best val_loss below 0.3"). `of` is `min` (default), `max` or `last`.
   */
  metric?: { name: string; of?: 'min' | 'max' | 'last' } & MetricComparison;
  /** `started` (default), `ended`, `name`, `duration`, or `metric:<name>` (by its min; `metric:<name>:max` for max). */
  sortBy?: string;
  order?: 'asc' | 'desc';
  /** Default 100. */
  limit?: number;
  offset?: number;
}

export interface ExperimentPage {
  experiments: Experiment[];
  /** How many match, ignoring limit and offset. */
  total: number;
}

export interface StepRange {
  fromStep?: number;
  toStep?: number;
}

export interface MetricPointRow {
  step: number;
  value: number;
  timestamp: Date;
}

export interface MetricBucket {
  /** First and last step in the bucket. */
  fromStep: number;
  toStep: number;
  count: number;
  min: number;
  max: number;
  /** The value at the bucket's last step. */
  last: number;
}

export interface MetricSummary {
  name: string;
  count: number;
  min: number | undefined;
  max: number | undefined;
  last: number | undefined;
  lastStep: number | undefined;
}

export interface TrackedCheckpoint {
  experiment: { id: number; name: string; project: string };
  id: string;
  path: string;
  format: string | undefined;
  size: number | undefined;
  sha256: string | undefined;
  epoch: number | undefined;
  step: number | undefined;
  createdAt: Date;
  isBest: boolean;
  isLatest: boolean;
  protected: boolean;
  status: string;
  tags: string[];
  description: string | undefined;
  metrics: Record<string, number>;
  deletedAt: Date | undefined;
}

export interface BestCheckpointsQuery {
  metric: string;
  mode?: 'min' | 'max';
  /** Default 10. */
  n?: number;
  project?: string;
}

export interface Statistics {
  experiments: { total: number; byStatus: Record<string, number> };
  /** Live checkpoints and their bytes, per experiment id. */
  checkpoints: {
    total: number;
    bytes: number;
    byExperiment: Array<{ id: number; name: string; count: number; bytes: number }>;
  };
  /** Of finished experiments, in milliseconds. */
  durations: { count: number; mean: number | undefined; min: number | undefined; max: number | undefined };
  metrics: {
    series: number;
    points: number;
    byExperiment: Array<{ id: number; name: string; series: number; points: number }>;
  };
}

export interface ExperimentExport {
  experiment: Experiment;
  params: Record<string, unknown>;
  /** name -> points in step order; NaN and infinities as the strings "NaN", "Infinity", "-Infinity". */
  metrics: Record<string, Array<{ step: number; value: number; timestamp: string }>>;
  checkpoints: TrackedCheckpoint[];
}
