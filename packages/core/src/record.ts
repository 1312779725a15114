/** A checkpoint's record: what the manager knows of each checkpoint, and what trackers and hooks are told. */

/** `missing`: the file is gone; `corrupted`: its size or digest differs from the record. */
export type CheckpointStatus = 'ok' | 'missing' | 'corrupted';

export interface BackupInfo {
  /** Relative to the experiment folder. */
  file: string;
  sha256: string;
  at: string;
}

/** One file of a sharded checkpoint. */
export interface StoredFile {
  /** Relative to the experiment folder. */
  file: string;
  size: number;
  sha256: string;
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
  /** The checkpoint file, relative to the experiment folder (a sharded checkpoint: its index, `<set>/model.safetensors.index.json`). */
  file: string;
  format: string;
  /** Bytes on disk: every file of a sharded checkpoint together. */
  size: number;
  /** SHA-256 of `file` (a sharded checkpoint's index names its shards; each has its own digest in `files`). */
  sha256: string;
  /**
   * A sharded checkpoint's files, relative to the experiment folder, all in
   * one folder of their own, the index last. Absent for a single file.
   */
  files?: StoredFile[];
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
