/** Generated tensors and state trees, the round-trip property of a backend, and where two trees differ. */

import { join } from 'node:path';
import {
  byteLengthOf,
  type DType,
  elementBits,
  isTensor,
  type StateObject,
  type StateTree,
  type StateValue,
  type StorageBackend,
  type Tensor,
  Tuple,
  tensor,
} from '@ckpt/core';
import fc from 'fast-check';
import { type FuzzSummary, fuzz } from './run.js';

/** Tensors of the given dtypes: small shapes (zero-sized included) and random bytes. */
export function tensors(dtypes: readonly DType[]): fc.Arbitrary<Tensor> {
  const shape = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 });
  return (
    fc
      .tuple(fc.constantFrom(...dtypes), shape)
      // Sub-byte dtypes (F4, F6) only in whole bytes.
      .filter(([dtype, dims]) => (elementBits(dtype) * dims.reduce((n, d) => n * d, 1)) % 8 === 0)
      .chain(([dtype, dims]) => {
        const length = byteLengthOf(dtype, dims);
        return fc.uint8Array({ minLength: length, maxLength: length }).map((data) => tensor(dtype, dims, data));
      })
  );
}

/** Names as files and users write them, and the ones a careless parser trips on. */
export const stateKeys: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string({ minLength: 1, maxLength: 12 }), weight: 4 },
  { arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }), weight: 1 },
  { arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', '0', 'a.b'), weight: 1 },
);

export interface StateTreeOptions {
  dtypes: readonly DType[];
  /** Leaves other than tensors: numbers, strings, booleans, null, tuples and lists (default all). */
  values?: boolean;
  maxDepth?: number;
}

/** State trees: nested records, lists and tuples, with tensors and plain values at the leaves. */
export function stateTrees(options: StateTreeOptions): fc.Arbitrary<StateTree> {
  const leaf: fc.Arbitrary<StateValue> =
    options.values === false
      ? tensors(options.dtypes)
      : fc.oneof(
          { arbitrary: tensors(options.dtypes), weight: 3 },
          { arbitrary: fc.double(), weight: 1 },
          { arbitrary: fc.integer(), weight: 1 },
          { arbitrary: fc.string({ maxLength: 16 }), weight: 1 },
          { arbitrary: fc.boolean(), weight: 1 },
          { arbitrary: fc.constant(null), weight: 1 },
        );
  const record = (value: fc.Arbitrary<StateValue>) =>
    fc.uniqueArray(fc.tuple(stateKeys, value), { maxLength: 5, selector: ([key]) => key }).map(entriesToRecord);
  const { tree } = fc.letrec<{ tree: StateValue }>((self) => ({
    tree: fc.oneof(
      { depthSize: 'small', maxDepth: options.maxDepth ?? 3, withCrossShrink: true },
      leaf,
      record(self('tree')),
      ...(options.values === false
        ? []
        : [
            fc.array(self('tree'), { maxLength: 4 }),
            fc.array(self('tree'), { maxLength: 3 }).map((a) => Tuple.from(a)),
          ]),
    ),
  }));
  return record(tree) as fc.Arbitrary<StateTree>;
}

/** A record from entries, with `__proto__` and friends as own properties. */
function entriesToRecord(entries: Array<[string, StateValue]>): StateObject {
  const out: StateObject = {};
  for (const [key, value] of entries)
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

/**
 * The round-trip property of a storage backend: generated state trees (with
 * tensors of its dtypes) are saved into `folder` and loaded back, and what
 * saves must load back exactly. A tree the backend refuses with a typed error
 * counts as refused.
 */
export function fuzzRoundTrip(backend: StorageBackend, folder: string, runs: number): Promise<FuzzSummary> {
  const extension = backend.extensions.find((e) => !e.endsWith('.json')) ?? '';
  let counter = 0;
  return fuzz(
    `${backend.name}/round-trip`,
    stateTrees({ dtypes: backend.dtypes }),
    async (state) => {
      const path = join(folder, `round-trip-${counter++}${extension}`);
      await backend.save(path, state, { fsync: false });
      const loaded = await backend.load(path, { copy: true });
      const difference = stateDifference(state, loaded.state);
      if (difference) throw new Error(`the state came back changed: ${difference}`);
    },
    { runs },
  );
}

/**
 * Where two state trees differ (a path and what differs), or undefined when
 * they are the same: tensors by dtype, shape and bytes; numbers by
 * `Object.is`; tuples apart from lists; keys compared as own properties
 * whatever their names (a `constructor` key confuses generic deep equality).
 */
export function stateDifference(expected: unknown, actual: unknown): string | undefined {
  const work: Array<[string, unknown, unknown]> = [['state', expected, actual]];
  for (let item = work.pop(); item; item = work.pop()) {
    const [path, a, b] = item;
    const kind = kindOf(a);
    if (kind !== kindOf(b)) return `${path}: a ${kind} became a ${kindOf(b)}`;
    if (kind === 'tensor') {
      const [x, y] = [a as Tensor, b as Tensor];
      if (x.dtype !== y.dtype || x.shape.join() !== y.shape.join() || !sameBytes(x.data, y.data)) {
        return `${path}: tensor ${x.dtype}[${x.shape}] became ${y.dtype}[${y.shape}] or its bytes changed`;
      }
    } else if (kind === 'bytes') {
      if (!sameBytes(a as Uint8Array, b as Uint8Array)) return `${path}: bytes changed`;
    } else if (kind === 'list' || kind === 'tuple') {
      const [x, y] = [a as unknown[], b as unknown[]];
      if (x.length !== y.length) return `${path}: length ${x.length} became ${y.length}`;
      for (const [i, v] of x.entries()) work.push([`${path}[${i}]`, v, y[i]]);
    } else if (kind === 'record') {
      const [x, y] = [a as Record<string, unknown>, b as Record<string, unknown>];
      const keys = Object.keys(x);
      if (keys.sort().join('\0') !== Object.keys(y).sort().join('\0')) {
        return `${path}: keys ${JSON.stringify(keys)} became ${JSON.stringify(Object.keys(y))}`;
      }
      for (const key of keys) work.push([`${path}[${JSON.stringify(key)}]`, x[key], y[key]]);
    } else if (kind === 'map' || kind === 'set') {
      return `${path}: maps and sets are not compared here`;
    } else if (!Object.is(a, b)) return `${path}: ${String(a)} became ${String(b)}`;
  }
  return undefined;
}

function kindOf(value: unknown): string {
  if (isTensor(value)) return 'tensor';
  if (value instanceof Uint8Array) return 'bytes';
  if (value instanceof Tuple) return 'tuple';
  if (Array.isArray(value)) return 'list';
  if (value instanceof Map) return 'map';
  if (value instanceof Set) return 'set';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'record' : typeof value;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((v, i) => v === b[i]);
}
