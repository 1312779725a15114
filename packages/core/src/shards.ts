/**
 * The Hugging Face sharded layout, whatever the format of the shards:
 * `<base>-00001-of-00003<ext>` and so on, plus `<base><ext>.index.json`
 * mapping each tensor to its file (what transformers writes and reads for
 * safetensors and for torch `.bin` files alike).
 */
import { basename } from 'node:path';
import { FormatError, shown } from './errors.js';
import type { Tensor } from './tensor.js';

/** Greedy, in order, as transformers does: a new shard when the next tensor would overflow this one. */
export function planShards(
  entries: ReadonlyArray<[string, Tensor]>,
  maxShardSize: number,
): Array<Array<[string, Tensor]>> {
  const shards: Array<Array<[string, Tensor]>> = [];
  let current: Array<[string, Tensor]> = [];
  let size = 0;
  for (const entry of entries) {
    const bytes = entry[1].data.byteLength;
    if (current.length > 0 && size + bytes > maxShardSize) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(entry);
    size += bytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

/** `model-00001-of-00003.safetensors`: shard `index` (from 0) of `count`. */
export function shardFileName(base: string, index: number, count: number, extension: string): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `${base}-${pad(index + 1)}-of-${pad(count)}${extension}`;
}

/** Matches the shard files of `base`, to find stale shards of an earlier save. */
export function isShardOf(base: string, fileName: string, extension: string): boolean {
  const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${literal(base)}-\\d{5}-of-\\d{5}${literal(extension)}$`).test(fileName);
}

export interface ShardIndex {
  metadata: Record<string, unknown>;
  weightMap: Map<string, string>;
}

/** Python's json.dumps(..., indent=2, sort_keys=True): sorted by code point, non-ASCII escaped. */
export function formatShardIndex(metadata: Record<string, unknown>, weightMap: ReadonlyMap<string, string>): string {
  const byCodePoint = (a: string, b: string) => {
    const x = [...a].map((c) => c.codePointAt(0) as number);
    const y = [...b].map((c) => c.codePointAt(0) as number);
    for (let i = 0; i < Math.min(x.length, y.length); i++)
      if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
    return x.length - y.length;
  };
  const sortedObject = (entries: Array<[string, unknown]>) =>
    Object.fromEntries(entries.sort(([a], [b]) => byCodePoint(a, b)));
  const index = {
    metadata: sortedObject(Object.entries(metadata)),
    weight_map: sortedObject([...weightMap]),
  };
  const json = JSON.stringify(index, null, 2).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return `${json}\n`;
}

/** Parses an index file's text; every shard it names must be a plain file name in the same folder. */
export function parseShardIndex(text: string, path: string): ShardIndex {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new FormatError(`shard index is not valid JSON: ${(error as Error).message}`, { path });
  }
  const index = json as { metadata?: unknown; weight_map?: unknown };
  if (typeof json !== 'object' || json === null || typeof index.weight_map !== 'object' || index.weight_map === null) {
    throw new FormatError('shard index has no weight_map object', { path, expected: '{"weight_map": {...}}' });
  }
  const weightMap = new Map<string, string>();
  for (const [name, file] of Object.entries(index.weight_map)) {
    if (typeof file !== 'string' || file === '' || basename(file) !== file || file === '..' || file.includes('\\')) {
      const found = shown(file);
      throw new FormatError(
        `shard index maps ${JSON.stringify(name)} to ${found}, which is not a file in the index's folder`,
        { path, expected: 'a plain file name', found },
      );
    }
    weightMap.set(name, file);
  }
  // Copied into a record without a prototype: a `__proto__` or `constructor` key in the file stays data.
  const metadata: Record<string, unknown> = Object.create(null);
  if (typeof index.metadata === 'object' && index.metadata !== null && !Array.isArray(index.metadata)) {
    Object.assign(metadata, index.metadata);
  }
  return { metadata, weightMap };
}

/** Runs the tasks, at most `limit` at a time; fails with the first failure once all have settled. */
export async function inParallel<T>(tasks: ReadonlyArray<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let failure: { error: unknown } | undefined;
  let next = 0;
  const worker = async () => {
    while (next < tasks.length && !failure) {
      const i = next++;
      try {
        results[i] = await (tasks[i] as () => Promise<T>)();
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure) throw failure.error;
  return results;
}
