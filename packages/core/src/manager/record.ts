/** The index file that holds the records (the manager's own format). */
import type { StoredRecord } from '../record.js';

export type { BackupInfo, CheckpointRecord, CheckpointStatus, StoredFile, StoredRecord } from '../record.js';

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
  /** A checkpoint written by several processes (`save({ rank, worldSize })`): who joined, what each wrote. */
  gather?: Gather;
}

/**
 * One checkpoint step written by `worldSize` processes: each rank writes its
 * part into the step's staging folder and records it here; the rank that
 * records the last part verifies them all and commits the checkpoint.
 */
export interface Gather {
  worldSize: number;
  /** When the first rank announced the step (ISO 8601): a gathering older than `gatherTimeoutMs` is abandoned. */
  started: string;
  /** The ranks that joined, with their processes (a rank whose process is gone cannot finish). */
  ranks: Array<{ rank: number; owner: string }>;
  parts: GatheredPart[];
}

/** A rank's part of a gathered checkpoint, as written. */
export interface GatheredPart {
  rank: number;
  /** Relative to the experiment folder: `<set>/model-0000{rank+1}-of-0000{worldSize}.safetensors`. */
  file: string;
  size: number;
  sha256: string;
  /** The tensors in it (names are unique across the ranks). */
  tensors: string[];
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
