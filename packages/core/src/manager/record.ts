/** What the manager knows of each checkpoint, and the index file that holds it. */

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

export const INDEX_VERSION = 1;

/**
 * A save announced before its file is written: the name is reserved, and if
 * the writer dies, recovery adopts the file when it is complete (backends
 * write atomically, so a file under the final name always is) or drops the
 * intent when there is none.
 */
export interface PendingSave {
  /** `<host>-<pid>` of the writer: recovery leaves the intents of live processes alone. */
  owner: string;
  /** The record to be, without its digest and size yet. */
  record: StoredRecord;
}

/** The index (`checkpoint_metadata.json` by default, plus its journal). */
export interface IndexFile {
  version: number;
  experiment: string;
  model: string;
  /** How "best" is decided, as recorded when the experiment started. */
  best?: { monitor?: string; mode: 'min' | 'max' };
  /** The next record's `sequence`. */
  nextSequence: number;
  checkpoints: StoredRecord[];
  /** Saves in progress. */
  pending: PendingSave[];
  /** Files whose records were removed and which are being unlinked (finished on the next open). */
  deleting: string[];
  /**
   * Entries of the index or journal that failed their checks (a name that
   * leaves the folder, a missing field): kept verbatim, so nothing is lost,
   * but never used.
   */
  rejected?: RejectedEntry[];
}

/** An index or journal entry that was refused, where it was, and why. */
export interface RejectedEntry {
  where: string;
  reason: string;
  entry: unknown;
}
