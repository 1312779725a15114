/** The CheckpointManager's options, checked once with clear errors. */
import { resolve } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import type { CheckpointEvents, EventSink } from '../events.js';
import type { StorageRegistry } from '../registry.js';
import type { StorageBackend } from '../storage.js';
import type { Tracker } from '../tracker.js';
import { epochStepLayout, type Layout } from './layouts/index.js';
import { allOf, type RetentionPolicy, type SavePolicy } from './policies.js';
import { monitorScore, type Score } from './ranking.js';
import type { CheckpointRecord } from './record.js';
import type { SnapshotMode } from './snapshot.js';

export interface CheckpointManagerOptions {
  /** The root folder; the layout puts each experiment in a subfolder. */
  directory: string;
  /** The experiment's name (default: the model's name). */
  experiment?: string;
  /** The model's name (default `'model'`). */
  model?: string;
  /** The backend checkpoints are written with, or its name in `registry`. */
  storage: StorageBackend | string;
  /** Backends for `export` to other formats and for reading other formats (needed when `storage` is a name). */
  registry?: StorageRegistry;
  /** Options passed to the backend's `save` (e.g. `{ tiedWeights: 'dedupe' }`). */
  saveOptions?: Record<string, unknown>;
  tracker?: Tracker;
  hooks?: EventSink<CheckpointEvents>;
  /** Where files go and their names (default: seed 003's). */
  layout?: Layout;
  /** When to save; several policies must all agree (default: every call saves). */
  savePolicy?: SavePolicy | SavePolicy[];
  /** What to keep; a checkpoint any policy keeps is kept (default: keep everything). */
  retention?: RetentionPolicy | RetentionPolicy[];
  /**
   * How "best" is decided: a monitored metric (default `{ monitor: 'val_loss', mode: 'min' }`,
   * as seed 003), or `fn` scoring metrics where higher is better (undefined: not ranked).
   */
  best?: { monitor: string; mode?: 'min' | 'max' } | { fn: Score; name?: string };
  integrity?: {
    /** Flush files and folders before a save returns (default true). */
    fsync?: boolean;
    /** Check the SHA-256 on every load (default false; `load({ verifyIntegrity })` overrides). */
    verifyOnLoad?: boolean;
  };
  /** Copy checkpoints to the backup folder after saving: the best ones, all, or those a predicate picks. */
  backup?: { when: 'best' | 'all' | ((record: CheckpointRecord) => boolean) };
  /** Gzip checkpoint files. Costs CPU on save and a full decompressed copy on load (no zero-copy). */
  compression?: 'gzip' | false;
  /** Return from `save` once the state is snapshotted and write in the background. */
  async?: boolean;
  /**
   * In async mode, how the state is protected from later mutation: `'copy'` (default)
   * copies tensor bytes before `save` returns; `'transfer'` moves the buffers behind
   * the tensors to the manager in O(1), detaching the caller's (for state made just
   * to be saved); `'none'` trusts the caller not to mutate them until the save is done.
   */
  snapshot?: SnapshotMode;
  /** The cache of checkpoint headers read by `inspect` (the index has its own, checked against the files). */
  cache?: { max?: number; ttlMs?: number };
  /** How long to wait for another process's lock on the index (default 30 s). */
  lockTimeoutMs?: number;
  /**
   * How long the ranks of a multi-process save (`save({ rank, worldSize })`) wait for
   * one another before the step is abandoned (default 10 minutes).
   */
  gatherTimeoutMs?: number;
  /** Adopt checkpoint files found in the folder without a record (they must load; the digest is computed). */
  adoptOrphans?: boolean;
  /**
   * Open to read only: nothing in the folder is written or deleted. Recovery
   * says what it would do (`recovery.removed` lists what a writer would remove)
   * and changes nothing; saving, deleting and other changes are refused.
   */
  readOnly?: boolean;
  /** Where warnings go (default `process.emitWarning`). */
  warn?: (message: string) => void;
  /** The clock, for names and time-based policies (default `() => new Date()`). */
  now?: () => Date;
}

export interface ResolvedOptions {
  root: string;
  experiment: string;
  model: string;
  backend: StorageBackend;
  registry: StorageRegistry | undefined;
  saveOptions: Record<string, unknown>;
  tracker: Tracker | undefined;
  hooks: EventSink<CheckpointEvents> | undefined;
  layout: Layout;
  savePolicy: SavePolicy | undefined;
  retention: RetentionPolicy[];
  score: Score;
  best: { monitor?: string; mode: 'min' | 'max' };
  fsync: boolean;
  verifyOnLoad: boolean;
  backup: ((record: CheckpointRecord) => boolean) | undefined;
  compression: 'gzip' | undefined;
  async: boolean;
  snapshot: SnapshotMode;
  cache: { max: number; ttlMs: number };
  lockTimeoutMs: number;
  gatherTimeoutMs: number;
  adoptOrphans: boolean;
  readOnly: boolean;
  warn: (message: string) => void;
  now: () => Date;
}

const KNOWN = new Set([
  'directory',
  'experiment',
  'model',
  'storage',
  'registry',
  'saveOptions',
  'tracker',
  'hooks',
  'layout',
  'savePolicy',
  'retention',
  'best',
  'integrity',
  'backup',
  'compression',
  'async',
  'snapshot',
  'cache',
  'lockTimeoutMs',
  'gatherTimeoutMs',
  'adoptOrphans',
  'readOnly',
  'warn',
  'now',
]);

function fail(message: string, expected?: string, found?: unknown): never {
  throw new InvalidArgumentError(`CheckpointManager: ${message}`, {
    ...(expected ? { expected } : {}),
    ...(found !== undefined
      ? { found: typeof found === 'string' ? found : (JSON.stringify(found) ?? String(found)) }
      : {}),
  });
}

function name(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.trim() === '' || /[/\\\0]/.test(value) || value === '.' || value === '..') {
    fail(`\`${what}\` must be a non-empty name without slashes`, 'a name like "resnet18"', value);
  }
  return value;
}

function resolveBackend(options: CheckpointManagerOptions): StorageBackend {
  const { storage, registry } = options;
  if (typeof storage === 'string') {
    if (!registry) fail(`\`storage\` is the name ${JSON.stringify(storage)} but no \`registry\` was given`);
    if (!registry.has(storage)) {
      fail(
        `no storage backend named ${JSON.stringify(storage)} is registered`,
        registry
          .list()
          .map((b) => b.name)
          .join(', '),
        storage,
      );
    }
    return registry.get(storage);
  }
  if (!storage || typeof storage.save !== 'function' || typeof storage.load !== 'function') {
    fail('`storage` must be a storage backend (or its name in `registry`)', 'an object with name, save, load, inspect');
  }
  return storage;
}

function resolveBest(best: CheckpointManagerOptions['best']): { score: Score; best: ResolvedOptions['best'] } {
  if (best === undefined) return { score: monitorScore('val_loss', 'min'), best: { monitor: 'val_loss', mode: 'min' } };
  if ('fn' in best) {
    if (typeof best.fn !== 'function') fail('`best.fn` must be a function of the metrics');
    return { score: best.fn, best: { ...(best.name ? { monitor: best.name } : {}), mode: 'max' } };
  }
  if (typeof best.monitor !== 'string' || best.monitor === '')
    fail('`best.monitor` must name a metric', undefined, best);
  const mode = best.mode ?? 'min';
  if (mode !== 'min' && mode !== 'max') fail('`best.mode` must be "min" or "max"', 'min | max', mode);
  return { score: monitorScore(best.monitor, mode), best: { monitor: best.monitor, mode } };
}

function resolveBackup(backup: CheckpointManagerOptions['backup']): ResolvedOptions['backup'] {
  if (backup === undefined) return undefined;
  const { when } = backup;
  if (when === 'all') return () => true;
  if (when === 'best') return (record) => record.isBest;
  if (typeof when === 'function') return when;
  return fail('`backup.when` must be "best", "all" or a function of the record', undefined, when);
}

function positiveInteger(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) fail(`\`${what}\` must be a non-negative integer`, undefined, value);
  return value;
}

export function resolveOptions(options: CheckpointManagerOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options are required', '{ directory, storage, ... }');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) fail(`unknown option \`${key}\``, [...KNOWN].join(', '), key);
  }
  if (typeof options.directory !== 'string' || options.directory === '') {
    fail('`directory` must be a folder path', 'a path such as "checkpoints"', options.directory);
  }
  // A bucket URL would otherwise become a local folder named "s3:".
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(options.directory)) {
    fail(
      `\`directory\` is a URL (${options.directory}): the manager keeps checkpoints in a folder`,
      'a folder path; for checkpoints straight in a bucket, BucketCheckpoints from @ckpt/resolver-b2; to copy each checkpoint to a bucket, the `backup` option',
      options.directory,
    );
  }
  const model = name(options.model ?? 'model', 'model');
  const experiment = name(options.experiment ?? model, 'experiment');
  const { score, best } = resolveBest(options.best);
  const policies = options.savePolicy === undefined ? [] : [options.savePolicy].flat();
  if (policies.some((p) => typeof p !== 'function')) fail('`savePolicy` must be policies such as everyEpochs(5)');
  const retention = options.retention === undefined ? [] : [options.retention].flat();
  if (retention.some((p) => typeof p !== 'function')) fail('`retention` must be policies such as keepLatest(3)');
  if (options.compression !== undefined && options.compression !== false && options.compression !== 'gzip') {
    fail('`compression` must be "gzip" or false', 'gzip | false', options.compression);
  }
  if (options.snapshot !== undefined && !['copy', 'transfer', 'none'].includes(options.snapshot)) {
    fail('`snapshot` must be "copy", "transfer" or "none"', 'copy | transfer | none', options.snapshot);
  }
  const layout = options.layout ?? epochStepLayout();
  if (typeof layout.fileName !== 'function' || typeof layout.folder !== 'function') {
    fail('`layout` must be a layout such as epochStepLayout()');
  }
  return {
    root: resolve(options.directory),
    experiment,
    model,
    backend: resolveBackend(options),
    registry: options.registry,
    saveOptions: { ...options.saveOptions },
    tracker: options.tracker,
    hooks: options.hooks,
    layout,
    savePolicy: policies.length === 0 ? undefined : policies.length === 1 ? policies[0] : allOf(...policies),
    retention,
    score,
    best,
    fsync: options.integrity?.fsync ?? true,
    verifyOnLoad: options.integrity?.verifyOnLoad ?? false,
    backup: resolveBackup(options.backup),
    compression: options.compression === 'gzip' ? 'gzip' : undefined,
    async: options.async ?? false,
    snapshot: options.snapshot ?? 'copy',
    cache: {
      max: positiveInteger(options.cache?.max, 500, 'cache.max') || 1,
      ttlMs: positiveInteger(options.cache?.ttlMs, 1000, 'cache.ttlMs'),
    },
    lockTimeoutMs: positiveInteger(options.lockTimeoutMs, 30_000, 'lockTimeoutMs'),
    gatherTimeoutMs: positiveInteger(options.gatherTimeoutMs, 600_000, 'gatherTimeoutMs'),
    adoptOrphans: options.adoptOrphans ?? false,
    readOnly: options.readOnly ?? false,
    warn: options.warn ?? ((message) => process.emitWarning(message, { code: 'CKPT_WARNING' })),
    now: options.now ?? (() => new Date()),
  };
}
