import { InvalidArgumentError, NotFoundError } from './errors.js';
import type { StorageRegistry } from './registry.js';
import type { LoadOptions, SaveOptions, SaveResult } from './storage.js';
import { flattenTensors } from './tree.js';

export interface ConvertOptions {
  /** The backends to choose from. */
  registry: StorageRegistry;
  /** The source backend's name; by default found from the file's content, then its extension. */
  from?: string;
  /** The destination backend's name; by default found from the destination's extension. */
  to?: string;
  load?: LoadOptions & Record<string, unknown>;
  /**
   * Passed to the destination's `save`, after these defaults: the source's
   * metadata, and `tiedWeights: 'dedupe'` (as transformers does: tied
   * weights are stored once). Add `maxShardSize` to shard.
   */
  save?: SaveOptions & Record<string, unknown>;
}

export interface ConvertResult extends SaveResult {
  source: { path: string; format: string };
  format: string;
  tensorCount: number;
}

/**
 * Converts a checkpoint between any two registered formats (torch.save and
 * safetensors, say). Views that were not contiguous come out contiguous;
 * the result carries the new files' sizes and SHA-256 digests.
 */
export async function convertCheckpoint(
  source: string,
  destination: string,
  options: ConvertOptions,
): Promise<ConvertResult> {
  const { registry } = options;
  if (source === destination) throw new InvalidArgumentError('converting a file onto itself');
  const from = options.from ? registry.get(options.from) : await registry.resolve(source);
  const to = options.to ? registry.get(options.to) : registry.forPath(destination);
  if (!to) {
    throw new NotFoundError(`no registered storage backend writes ${destination}`, {
      path: destination,
      expected: `an extension in ${registry
        .list()
        .flatMap((b) => b.extensions)
        .join(', ')}, or the option \`to\``,
    });
  }
  const loaded = await from.load(source, options.load);
  const saved = await to.save(destination, loaded.state, {
    metadata: loaded.metadata,
    tiedWeights: 'dedupe',
    ...options.save,
  } as SaveOptions);
  return {
    ...saved,
    source: { path: source, format: from.name },
    format: to.name,
    tensorCount: new Set(flattenTensors(loaded.state).map(([, t]) => t)).size,
  };
}
