/**
 * Progress of long work (saving, hashing, converting), as the storage contract
 * reports it. The contract's own type, so a backend author depends on
 * @ckpt/core alone; @ckpt/native reports the same shape.
 */
export interface Progress {
  bytesDone: number;
  bytesTotal: number;
}

export type ProgressCallback = (progress: Progress) => void;
