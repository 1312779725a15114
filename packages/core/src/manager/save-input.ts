/**
 * What `save` accepts, checked up front: a typed error names the field that is
 * wrong before anything is written.
 */
import { InvalidArgumentError, shown } from '../errors.js';
import { parseSize } from '../size.js';
import { assertStateTree, type StateTree, type StateValue } from '../tree.js';

export interface SaveInput {
  /** The whole state to write. Or give `model` (and `optimizer`, `scheduler`) instead. */
  state?: StateTree;
  /** Written as `model_state_dict`, with `optimizer_state_dict` and `scheduler_state_dict`, as torch code expects. */
  model?: StateValue;
  optimizer?: StateValue;
  scheduler?: StateValue;
  epoch?: number;
  step?: number;
  metrics?: Record<string, number>;
  config?: Record<string, unknown>;
  tags?: string[];
  description?: string;
  /** Written into the file's metadata (string to string). */
  metadata?: Record<string, string>;
  /** Save even when the save policy says not to. */
  force?: boolean;
  /** Protect the new checkpoint from retention. */
  protect?: boolean;
  /**
   * Shard the checkpoint: files of at most this size (bytes, or "5GB",
   * "2GiB") with an index, in a folder of their own (the default is the
   * manager's `saveOptions.maxShardSize`; none: one file).
   */
  maxShardSize?: number | string;
  /**
   * One process's part of a checkpoint written by `worldSize` processes (ranks
   * 0 to worldSize - 1, each saving the same epoch and step with its own
   * tensors): the checkpoint is committed once every rank's part is written
   * and verified, and every rank's `save` returns it.
   */
  rank?: number;
  worldSize?: number;
}

function nonNegativeInteger(value: unknown, what: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new InvalidArgumentError(`save: \`${what}\` must be a non-negative integer`, { found: shown(value) });
  }
  return value;
}

function checkMetrics(metrics: unknown): Record<string, number> {
  if (metrics === undefined) return {};
  if (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics)) {
    throw new InvalidArgumentError('save: `metrics` must be an object of numbers', { found: shown(metrics) });
  }
  for (const [name, value] of Object.entries(metrics)) {
    if (typeof value !== 'number') {
      throw new InvalidArgumentError(`save: metric ${JSON.stringify(name)} must be a number`, {
        found: typeof value,
      });
    }
  }
  return { ...(metrics as Record<string, number>) };
}

function composeState(input: SaveInput): StateTree {
  if (input.state !== undefined) {
    if (input.model !== undefined) throw new InvalidArgumentError('save: give `state` or `model`, not both');
    assertStateTree(input.state, 'save: state');
    return input.state;
  }
  if (input.model === undefined) {
    throw new InvalidArgumentError('save: nothing to save', {
      expected: '`state`, or `model` (with `optimizer`, ...)',
    });
  }
  const state: StateTree = { model_state_dict: input.model };
  if (input.optimizer !== undefined) state.optimizer_state_dict = input.optimizer;
  if (input.scheduler !== undefined) state.scheduler_state_dict = input.scheduler;
  if (input.epoch !== undefined) state.epoch = input.epoch;
  if (input.step !== undefined) state.step = input.step;
  assertStateTree(state, 'save: state');
  return state;
}

/** A save's input, checked and copied. */
export interface Prepared {
  state: StateTree;
  epoch: number | null;
  step: number | null;
  metrics: Record<string, number>;
  config: Record<string, unknown> | undefined;
  tags: string[];
  description: string | undefined;
  metadata: Record<string, string>;
  protect: boolean;
  /** Bytes per shard when sharded. */
  maxShardSize: number | undefined;
  /** For a multi-process save. */
  gather: { rank: number; worldSize: number } | undefined;
}

/** Checks a save's input and copies what the save keeps. */
export function prepareSave(input: SaveInput): Prepared {
  if (typeof input !== 'object' || input === null) throw new InvalidArgumentError('save: expected an object');
  const tags = input.tags ?? [];
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string' || t === '')) {
    throw new InvalidArgumentError('save: `tags` must be non-empty strings');
  }
  const metadata = input.metadata ?? {};
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') throw new InvalidArgumentError(`save: metadata ${key} must be a string`);
  }
  return {
    state: composeState(input),
    epoch: nonNegativeInteger(input.epoch, 'epoch'),
    step: nonNegativeInteger(input.step, 'step'),
    metrics: checkMetrics(input.metrics),
    config: input.config,
    tags: [...new Set(tags)],
    description: input.description,
    metadata: { ...metadata },
    protect: input.protect ?? false,
    maxShardSize:
      input.maxShardSize === undefined
        ? undefined
        : parseSize(input.maxShardSize, { what: 'the maxShardSize of a save' }),
    gather: checkGather(input),
  };
}

function checkGather(input: SaveInput): Prepared['gather'] {
  if (input.rank === undefined && input.worldSize === undefined) return undefined;
  const { rank, worldSize } = input;
  if (typeof worldSize !== 'number' || !Number.isInteger(worldSize) || worldSize < 1 || worldSize > 65_536) {
    throw new InvalidArgumentError('save: `worldSize` must be an integer from 1 to 65536', {
      found: shown(worldSize),
    });
  }
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new InvalidArgumentError(`save: \`rank\` must be an integer from 0 to ${worldSize - 1}`, {
      found: shown(rank),
    });
  }
  if (input.epoch === undefined && input.step === undefined) {
    throw new InvalidArgumentError('save: a multi-process save needs `step` or `epoch`: the ranks meet on them');
  }
  return worldSize === 1 ? undefined : { rank, worldSize };
}
