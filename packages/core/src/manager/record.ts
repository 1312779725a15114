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
