/**
 * Sharded checkpoints: a set of files (Hugging Face shards and their index)
 * in a folder of its own inside the experiment folder. The set is written in
 * a staging folder and renamed into place as one folder, so no reader ever
 * finds part of a set under its final name; it is deleted by removing its
 * folder after its record is gone.
 */
import { dirname } from 'node:path';
import { UnsupportedError } from '../errors.js';
import type { StorageBackend } from '../storage.js';
import type { StoredFile, StoredRecord } from './record.js';

/** The most files one sharded checkpoint may list (a record from a file is checked against it). */
export const MAX_SET_FILES = 100_000;

/** Every file of a checkpoint with its size and digest: the set's files, or the one file. */
export function recordFiles(record: StoredRecord): StoredFile[] {
  return record.files ?? [{ file: record.file, size: record.size, sha256: record.sha256 }];
}

/**
 * What deleting a checkpoint removes, in order: its file; or each file of its
 * set, then the set's folder (removed only once empty: nothing is ever removed
 * recursively on the word of an index); and the same of its backup, which
 * mirrors the checkpoint's layout under the backup folder.
 */
export function removalTargets(record: StoredRecord): string[] {
  const own = record.files ? [...record.files.map((f) => f.file), dirname(record.file)] : [record.file];
  const backup = record.backup?.file;
  if (backup === undefined) return own;
  if (!record.files) return [...own, backup];
  const mirror = backup.slice(0, backup.length - record.file.length); // `<backup folder>/`
  return [...own, ...own.map((file) => `${mirror}${file}`)];
}

/** The index file a sharded save writes in its set's folder, as the backend names it; a backend without one cannot shard. */
export function setIndexName(backend: StorageBackend): string {
  if (!backend.shardIndexName) {
    throw new UnsupportedError(`the ${backend.name} backend writes no sharded layout: save without maxShardSize`, {
      expected: 'a backend with `shardIndexName` (safetensors, pytorch)',
    });
  }
  return backend.shardIndexName;
}
