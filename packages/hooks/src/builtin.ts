/** Built-in hooks: a logger, a save validator, and an early-stopping signal. */
import type {
  AfterSaveContext,
  BeforeSaveContext,
  CheckpointEvent,
  CheckpointEvents,
  CheckpointSkippedContext,
} from '@ckpt/core';
import { CHECKPOINT_EVENTS } from '@ckpt/core';
import type { HookControl, HookObject, HookResult } from './manager.js';

type Handlers = Partial<{
  [E in CheckpointEvent]: (context: CheckpointEvents[E], control: HookControl) => HookResult;
}> &
  HookObject<CheckpointEvents>;

export interface LoggerOptions {
  /** Where lines go (default console.log). */
  log?: (line: string) => void;
  /** Which events to log (default all). */
  events?: readonly CheckpointEvent[];
}

function describe(event: CheckpointEvent, context: Record<string, unknown>): string {
  const record = context.record as { id?: string } | undefined;
  const parts: string[] = [event];
  if (typeof context.experiment === 'string') parts.push(`experiment=${context.experiment}`);
  if (record?.id) parts.push(`checkpoint=${record.id}`);
  for (const key of ['epoch', 'step', 'reason', 'status', 'name', 'value', 'destination', 'key']) {
    const value = context[key];
    if (value !== undefined && value !== null)
      parts.push(`${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
  if (context.error !== undefined)
    parts.push(`error=${context.error instanceof Error ? context.error.message : String(context.error)}`);
  return `[ckpt] ${parts.join(' ')}`;
}

/** Logs one line per event. Register it for `loggerHook.events` or a subset. */
export function loggerHook(options: LoggerOptions = {}): {
  hook: HookObject<CheckpointEvents>;
  events: CheckpointEvent[];
} {
  const log = options.log ?? ((line: string) => console.log(line));
  return {
    hook: {
      handle: (event, context) => {
        log(describe(event, context as unknown as Record<string, unknown>));
      },
    },
    events: [...(options.events ?? CHECKPOINT_EVENTS)],
  };
}

export interface Threshold {
  /** Refuse to save when the metric is below this. */
  min?: number;
  /** Refuse to save when the metric is above this. */
  max?: number;
}

export interface ValidationOptions {
  /** Metrics that must be present and finite (default: every metric given must be finite). */
  monitor?: string | readonly string[];
  /** Bounds per metric. */
  thresholds?: Record<string, Threshold>;
  /** Refuse to save when a floating-point tensor holds NaN or infinity (default true). */
  checkTensors?: boolean;
}

interface TensorLike {
  dtype: string;
  data: Uint8Array;
}

function isTensorLike(value: unknown): value is TensorLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as TensorLike).dtype === 'string' &&
    (value as TensorLike).data instanceof Uint8Array
  );
}

/** True when the tensor holds NaN or an infinity (checked on the raw bits, with no conversion). */
export function hasNonFinite(tensor: TensorLike): boolean {
  const { data } = tensor;
  const aligned = (size: number) => (data.byteOffset % size === 0 ? data : data.slice());
  switch (tensor.dtype) {
    case 'F64':
    case 'C128': {
      const bytes = aligned(8);
      const values = new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
      for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return true;
      return false;
    }
    case 'F32':
    case 'C64': {
      const bytes = aligned(4);
      const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return true;
      return false;
    }
    case 'F16':
    case 'BF16': {
      // Exponent all ones: infinity or NaN.
      const mask = tensor.dtype === 'F16' ? 0x7c00 : 0x7f80;
      const bytes = aligned(2);
      const bits = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
      for (let i = 0; i < bits.length; i++) if (((bits[i] as number) & mask) === mask) return true;
      return false;
    }
    case 'F8_E5M2':
      return data.some((b) => (b & 0x7c) === 0x7c);
    case 'F8_E4M3':
      return data.some((b) => (b & 0x7f) === 0x7f);
    case 'F8_E4M3FNUZ':
    case 'F8_E5M2FNUZ':
      return data.some((b) => b === 0x80);
    case 'F8_E8M0':
      return data.some((b) => b === 0xff);
    default:
      return false;
  }
}

/** Every tensor in a state tree (objects, arrays, Maps), with its path. */
function* tensorsIn(value: unknown, path = '', seen = new Set<object>()): Generator<[string, TensorLike]> {
  if (isTensorLike(value)) {
    yield [path, value];
    return;
  }
  if (typeof value !== 'object' || value === null || seen.has(value) || value instanceof Uint8Array) return;
  seen.add(value);
  const join = (key: unknown) => (path === '' ? String(key) : `${path}.${String(key)}`);
  const entries: Iterable<[unknown, unknown]> =
    value instanceof Map ? value : Array.isArray(value) ? value.entries() : Object.entries(value);
  for (const [key, child] of entries) yield* tensorsIn(child, join(key), seen);
}

/**
 * Refuses to save when a monitored metric is missing, NaN or infinite, when a
 * threshold is crossed, or when a floating-point tensor holds NaN or infinity.
 */
export function validationHook(options: ValidationOptions = {}): { hook: Handlers; events: CheckpointEvent[] } {
  const monitor = options.monitor === undefined ? undefined : [options.monitor].flat();
  const check = (context: BeforeSaveContext): string | undefined => {
    const names = monitor ?? Object.keys(context.metrics);
    for (const name of names) {
      const value = context.metrics[name];
      if (value === undefined) return `metric ${name} is missing`;
      if (!Number.isFinite(value)) return `metric ${name} is ${value}`;
    }
    for (const [name, { min, max }] of Object.entries(options.thresholds ?? {})) {
      const value = context.metrics[name];
      if (value === undefined) continue;
      if (min !== undefined && value < min) return `metric ${name} is ${value}, below the minimum ${min}`;
      if (max !== undefined && value > max) return `metric ${name} is ${value}, above the maximum ${max}`;
    }
    if (options.checkTensors !== false) {
      for (const [path, tensor] of tensorsIn(context.state)) {
        if (hasNonFinite(tensor)) return `tensor ${path} holds NaN or infinity`;
      }
    }
    return undefined;
  };
  return {
    hook: {
      beforeSave: (context, control) => {
        const problem = check(context);
        if (problem) control.veto(problem);
      },
    },
    events: ['beforeSave'],
  };
}

export interface EarlyStoppingOptions {
  monitor: string;
  mode?: 'min' | 'max';
  /** How many checkpoints without improvement before the signal (default 3). */
  patience?: number;
  /** How much a value must improve to count (default 0). */
  minDelta?: number;
  /** Called once, when the signal is raised. */
  onStop?: (state: EarlyStoppingState) => void;
}

export interface EarlyStoppingState {
  readonly best: number | undefined;
  readonly bestEpoch: number | null | undefined;
  /** Checkpoints seen since the best one. */
  readonly since: number;
  readonly shouldStop: boolean;
}

/**
 * Signals that training should stop after `patience` checkpoints (saved or
 * skipped) without improving `monitor`. Read `state.shouldStop`, or pass `onStop`.
 */
export function earlyStoppingHook(options: EarlyStoppingOptions): {
  hook: Handlers;
  events: CheckpointEvent[];
  state: EarlyStoppingState;
} {
  const mode = options.mode ?? 'min';
  const patience = options.patience ?? 3;
  const minDelta = options.minDelta ?? 0;
  const state = {
    best: undefined as number | undefined,
    bestEpoch: undefined as number | null | undefined,
    since: 0,
    shouldStop: false,
  };
  const observe = (metrics: Record<string, number>, epoch: number | null | undefined) => {
    const value = metrics[options.monitor];
    if (value === undefined || Number.isNaN(value)) return;
    const improved =
      state.best === undefined || (mode === 'min' ? value < state.best - minDelta : value > state.best + minDelta);
    if (improved) {
      state.best = value;
      state.bestEpoch = epoch;
      state.since = 0;
      return;
    }
    state.since += 1;
    if (state.since >= patience && !state.shouldStop) {
      state.shouldStop = true;
      options.onStop?.(state);
    }
  };
  return {
    hook: {
      afterSave: (context: AfterSaveContext) => observe(context.record.metrics, context.record.epoch),
      checkpointSkipped: (context: CheckpointSkippedContext) => observe(context.metrics, context.epoch),
    },
    events: ['afterSave', 'checkpointSkipped'],
    state,
  };
}
