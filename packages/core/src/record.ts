/** A checkpoint's record: what the manager knows of each checkpoint, and what trackers and hooks are told. */

/** `missing`: the file is gone; `corrupted`: its size or digest differs from the record. */
export type CheckpointStatus = 'ok' | 'missing' | 'corrupted';

export interface BackupInfo {
  /** Relative to the experiment folder. */
  file: string;
  sha256: string;
  at: string;
}

/** A checkpoint record, as stored in the index (paths relative to the experiment folder). */
export interface StoredRecord {
  id: string;
  /** Order of saving within the experiment (1, 2, ...): decides "latest". */
  sequence: number;
  experiment: string;
  model: string;
  epoch: number | null;
  step: number | null;
  /** ISO 8601, UTC. */
  timestamp: string;
  /** The checkpoint file, relative to the experiment folder. */
  file: string;
  format: string;
  size: number;
  sha256: string;
  metrics: Record<string, number>;
  config?: Record<string, unknown>;
  tags: string[];
  description?: string;
  isBest: boolean;
  isLatest: boolean;
  protected: boolean;
  status: CheckpointStatus;
  compression?: 'gzip';
  backup?: BackupInfo;
}

/** A checkpoint record as the manager hands it out: with its absolute path. */
export interface CheckpointRecord extends StoredRecord {
  /** Absolute path of the checkpoint file. */
  path: string;
}
