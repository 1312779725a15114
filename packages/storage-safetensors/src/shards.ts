/**
 * Sharded safetensors checkpoints in the Hugging Face layout:
 * `model-00001-of-00003.safetensors` and so on, plus
 * `model.safetensors.index.json`. The layout itself is core's (shared with
 * torch `.bin` shards); this names the safetensors files.
 */
import { isShardOf as isShardOfCore, parseSize as parseCoreSize, shardFileName as shardFileNameCore } from '@ckpt/core';

export { formatShardIndex as formatIndex, parseShardIndex as parseIndex, planShards } from '@ckpt/core';

export const INDEX_SUFFIX = '.safetensors.index.json';
const EXTENSION = '.safetensors';

/** Bytes from a number or a string such as "5GB" (decimal, as transformers reads it) or "2GiB": core's one parser. */
export function parseSize(size: number | string): number {
  return parseCoreSize(size, { what: 'a shard size' });
}

export function shardFileName(base: string, index: number, count: number): string {
  return shardFileNameCore(base, index, count, EXTENSION);
}

/** Matches the shard files of `base`, to find stale shards of an earlier save. */
export function isShardOf(base: string, fileName: string): boolean {
  return isShardOfCore(base, fileName, EXTENSION);
}
