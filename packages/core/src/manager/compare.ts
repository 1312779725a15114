/** Comparing checkpoints: metrics side by side, configuration differences, tensor differences. */
import { dtypeInfo } from '../dtype.js';
import { type Tensor, toNumbers } from '../tensor.js';
import { flattenTensors, isPlainObject, type StateTree } from '../tree.js';
import type { CheckpointRecord } from './record.js';

export interface TensorDifference {
  /** `equal`/`different` values, or why they cannot be compared. */
  status: 'equal' | 'different' | 'shape' | 'dtype' | 'missing';
  maxAbsDiff?: number;
  meanAbsDiff?: number;
  detail?: string;
}

export interface Comparison {
  ids: string[];
  /** metric -> id -> value (null where a checkpoint lacks it). */
  metrics: Record<string, Record<string, number | null>>;
  /** Configuration keys (dotted) whose values differ: key -> id -> value (undefined where absent). */
  config: Record<string, Record<string, unknown>>;
  epochs: Record<string, number | null>;
  steps: Record<string, number | null>;
  /** With `tensors: true`: for each later checkpoint, tensor name -> its difference from the first. */
  tensors?: Record<string, Record<string, TensorDifference>>;
}

export function compareMetrics(records: readonly CheckpointRecord[]): Pick<Comparison, 'metrics' | 'epochs' | 'steps'> {
  const names = [...new Set(records.flatMap((r) => Object.keys(r.metrics)))].sort();
  const metrics: Comparison['metrics'] = {};
  for (const name of names) {
    metrics[name] = Object.fromEntries(records.map((r) => [r.id, r.metrics[name] ?? null]));
  }
  return {
    metrics,
    epochs: Object.fromEntries(records.map((r) => [r.id, r.epoch])),
    steps: Object.fromEntries(records.map((r) => [r.id, r.step])),
  };
}

function flattenConfig(value: unknown, prefix: string, out: Map<string, unknown>): void {
  if (isPlainObject(value)) {
    for (const [key, child] of Object.entries(value)) flattenConfig(child, prefix ? `${prefix}.${key}` : key, out);
  } else {
    out.set(prefix, value);
  }
}

export function compareConfigs(records: readonly CheckpointRecord[]): Comparison['config'] {
  const flat = records.map((r) => {
    const out = new Map<string, unknown>();
    flattenConfig(r.config ?? {}, '', out);
    return out;
  });
  const keys = [...new Set(flat.flatMap((m) => [...m.keys()]))].sort();
  const differences: Comparison['config'] = {};
  for (const key of keys) {
    const values = flat.map((m) => JSON.stringify(m.get(key)));
    if (values.every((v) => v === values[0])) continue;
    differences[key] = Object.fromEntries(records.map((r, i) => [r.id, flat[i]?.get(key)]));
  }
  return differences;
}

const NUMERIC = new Set(['float', 'int', 'uint', 'bool', 'complex']);

function difference(a: Tensor, b: Tensor): TensorDifference {
  if (a.dtype !== b.dtype) return { status: 'dtype', detail: `${a.dtype} vs ${b.dtype}` };
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    return { status: 'shape', detail: `[${a.shape.join(', ')}] vs [${b.shape.join(', ')}]` };
  }
  let x: number[];
  let y: number[];
  try {
    if (!NUMERIC.has(dtypeInfo(a.dtype).kind)) throw new Error('not numeric');
    x = toNumbers(a);
    y = toNumbers(b);
  } catch {
    // Sub-byte floats (F4, F6) are opaque bytes: equal or not.
    const equal = Buffer.from(a.data).equals(Buffer.from(b.data));
    return { status: equal ? 'equal' : 'different', detail: 'compared as bytes' };
  }
  let max = 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs((x[i] as number) - (y[i] as number));
    if (d > max || Number.isNaN(d)) max = d;
    sum += d;
  }
  const mean = x.length === 0 ? 0 : sum / x.length;
  return { status: max === 0 ? 'equal' : 'different', maxAbsDiff: max, meanAbsDiff: mean };
}

/** Per-tensor differences of `other` from `base`, by flattened name. */
export function compareTensors(base: StateTree, other: StateTree): Record<string, TensorDifference> {
  const a = new Map(flattenTensors(base));
  const b = new Map(flattenTensors(other));
  // Null prototype: tensor names come from files, and a tensor named `__proto__` must be listed like any other.
  const out: Record<string, TensorDifference> = Object.create(null);
  for (const [name, tensor] of a) {
    const peer = b.get(name);
    out[name] = peer ? difference(tensor, peer) : { status: 'missing', detail: 'only in the first checkpoint' };
  }
  for (const name of b.keys()) {
    if (!a.has(name)) out[name] = { status: 'missing', detail: 'only in this checkpoint' };
  }
  return out;
}
