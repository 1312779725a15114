/**
 * The contract every storage plugin implements. A backend is a plain object;
 * `@ckpt/testkit` checks any backend against this contract.
 */

import type { DType } from './dtype.js';
import type { ProgressCallback } from './progress.js';
import type { StateTree } from './tree.js';

export interface SaveOptions {
  /** User metadata, string to string (safetensors `__metadata__`). */
  metadata?: Record<string, string>;
  /** Flush the file and its folder before returning (default true). */
  fsync?: boolean;
  onProgress?: ProgressCallback;
  /**
   * Shards of at most this size (bytes, or "5GB", "2GiB") in the Hugging Face
   * layout, for backends that shard (`shardIndexName`); others refuse it.
   */
  maxShardSize?: number | string;
}

export interface FileDigest {
  path: string;
  size: number;
  /** Lowercase hex SHA-256, computed in the same pass as the write. */
  sha256: string;
}

export interface SaveResult extends FileDigest {
  /** Every file written: one, or the shards and the index of a sharded checkpoint (`path` is then the index). */
  files: FileDigest[];
}

export interface LoadOptions {
  /** Copy tensor bytes out of the file instead of handing out views of the mapping. */
  copy?: boolean;
}

export interface Loaded {
  state: StateTree;
  /** User metadata as saved. */
  metadata: Record<string, string>;
  /** The backend's name. */
  format: string;
  /** True when tensors are views of mapped files. */
  zeroCopy: boolean;
}

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  byteLength: number;
  /** The file holding it, for multi-file checkpoints. */
  file?: string;
}

export interface Inspection {
  format: string;
  path: string;
  /** Every file the checkpoint spans. */
  files: string[];
  tensors: TensorInfo[];
  parameterCount: number;
  /** Sum of the tensors' byte lengths. */
  tensorBytes: number;
  metadata: Record<string, string>;
}

export interface StorageBackend {
  /** Unique name, e.g. 'safetensors'. */
  readonly name: string;
  /** File name endings it reads and writes, longest first, e.g. ['.safetensors.index.json', '.safetensors']. */
  readonly extensions: readonly string[];
  /** The dtypes it can store. */
  readonly dtypes: readonly DType[];
  /**
   * The index a sharded save writes, as transformers names it
   * (`model.safetensors.index.json`, `pytorch_model.bin.index.json`): saving
   * to that name with `maxShardSize` writes the shards beside it. Absent: the
   * backend does not shard.
   */
  readonly shardIndexName?: string;
  /**
   * For formats whose checkpoint is a folder (torch.distributed.checkpoint):
   * the file inside it whose first bytes `detect` recognises. A folder path
   * is then read by this backend.
   */
  readonly folderMarker?: string;
  /** Whether these bytes (the first `DETECT_BYTES` of a file) look like this format. */
  detect(header: Uint8Array): boolean;
  /**
   * The bytes `save` would write to one file, as chunks that are views of the
   * state where they can be (for uploads streamed from memory). Optional:
   * backends without it cannot save straight to a bucket.
   */
  encode?(state: StateTree, options?: SaveOptions): EncodedFile;
  /** Writes atomically and returns size and SHA-256 from the same pass. */
  save(path: string, state: StateTree, options?: SaveOptions): Promise<SaveResult>;
  /** Reads; tensors are zero-copy views unless `copy` is set. */
  load(path: string, options?: LoadOptions): Promise<Loaded>;
  /** Reads the header only: no tensor bytes. */
  inspect(path: string): Promise<Inspection>;
}

/** One file's bytes in order, and its size. */
export interface EncodedFile {
  chunks: Uint8Array[];
  size: number;
}

/** How many leading bytes `detect` is given. */
export const DETECT_BYTES = 4096;
