/**
 * Fuzzing for ckpt's readers and for third-party plugins: fast-check runs
 * with a fixed seed and a bounded count by default (so `npm test` is
 * reproducible and short), byte mutations of seed files, and the property
 * every reader of outside bytes must hold: it returns or throws a typed
 * `CkptError`, within a time budget. `CKPT_FUZZ_SEED` picks another seed and
 * `CKPT_FUZZ_SCALE` multiplies every target's count, which turns the same
 * tests into a longer campaign (`tools/fuzz/campaign.mjs`).
 *
 * A failing byte input is written to the target's regression folder and
 * replayed before the generated inputs on every later run: commit it with
 * the fix.
 */

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  byteLengthOf,
  CkptError,
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

export { fc };

export interface FuzzOptions<T> {
  /** Inputs in a default run (times `CKPT_FUZZ_SCALE`). */
  runs: number;
  /** Refuses an input that takes longer than this: a hang guard, far above the normal time. */
  budgetMs?: number;
  /**
   * Fails the run when the process's peak resident memory grew by more than
   * this while it ran (default 512 MiB): small inputs must not make the code
   * under test allocate and fill gigabytes, whatever sizes they declare.
   */
  peakMemoryGrowthBytes?: number;
  /**
   * A folder of byte inputs that once failed: replayed first, and where a new
   * failing byte input is written. Only for targets whose inputs are bytes.
   */
  regressions?: string;
  /** The bytes of an input, to save it when it fails (byte targets only). */
  bytesOf?: (input: T) => Uint8Array;
  /** An input from saved bytes, to replay a regression file (byte targets only). */
  fromBytes?: (bytes: Uint8Array) => T;
}

/** What a run did: printed, and returned for tests that assert on coverage. */
export interface FuzzSummary {
  target: string;
  seed: number;
  executions: number;
  accepted: number;
  refused: number;
  /** Refusals by error code. */
  byCode: Record<string, number>;
  replayed: number;
  /** How much the process's peak resident memory grew during the run. */
  peakMemoryGrowthBytes: number;
}

const DEFAULT_SEED = 2020;

function envNumber(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a whole number, not ${text}`);
  return value;
}

/** The run's seed: `CKPT_FUZZ_SEED`, else the fixed default. */
export function fuzzSeed(): number {
  return envNumber('CKPT_FUZZ_SEED') ?? DEFAULT_SEED;
}

/**
 * Runs `check` on `runs` inputs from `arbitrary`: each must return (the
 * input is accepted) or throw a `CkptError` (refused) within the budget; anything else
 * thrown, or a property failure the target throws, fails the run with the
 * shrunk input. Returns the tally, also printed as one line.
 */
export async function fuzz<T>(
  target: string,
  arbitrary: fc.Arbitrary<T>,
  check: (input: T) => unknown,
  options: FuzzOptions<T>,
): Promise<FuzzSummary> {
  const seed = fuzzSeed();
  const summary: FuzzSummary = {
    target,
    seed,
    executions: 0,
    accepted: 0,
    refused: 0,
    byCode: {},
    replayed: 0,
    peakMemoryGrowthBytes: 0,
  };
  const peakBefore = peakResidentBytes();
  const budgetMs = options.budgetMs ?? 10_000;
  const once = async (input: T): Promise<void> => {
    const started = performance.now();
    const outcome = await outcomeOf(() => check(input));
    const took = performance.now() - started;
    if (took > budgetMs)
      throw new Error(`${target}: one input took ${Math.round(took)} ms, past the ${budgetMs} ms budget`);
    summary.executions++;
    if (outcome instanceof CkptError) {
      summary.refused++;
      summary.byCode[outcome.code] = (summary.byCode[outcome.code] ?? 0) + 1;
    } else summary.accepted++;
  };

  for (const [name, bytes] of regressionFiles(options.regressions)) {
    if (!options.fromBytes) throw new Error(`${target}: regression files need fromBytes`);
    try {
      await once(options.fromBytes(bytes));
    } catch (error) {
      throw new Error(`${target}: the regression file ${name} fails again: ${describe(error)}`, { cause: error });
    }
    summary.replayed++;
  }

  const runs = options.runs * (envNumber('CKPT_FUZZ_SCALE') ?? 1);
  const details = await fc.check(fc.asyncProperty(arbitrary, once), { seed, numRuns: runs, endOnFailure: true });
  summary.peakMemoryGrowthBytes = peakResidentBytes() - peakBefore;
  process.stderr.write(`fuzz ${target}: ${JSON.stringify(summaryLine(summary))}\n`);
  const memoryBudget = options.peakMemoryGrowthBytes ?? 512 << 20;
  if (summary.peakMemoryGrowthBytes > memoryBudget) {
    throw new Error(
      `${target}: peak memory grew by ${summary.peakMemoryGrowthBytes} bytes, past the ${memoryBudget}-byte budget`,
    );
  }
  if (details.failed) {
    const example = details.counterexample?.[0] as T | undefined;
    const saved = example !== undefined ? saveFinding(options, example) : undefined;
    throw new Error(
      `${target} failed on an input (seed ${seed}, path ${details.counterexamplePath}` +
        `${saved ? `, saved as ${saved}` : ''}): ${describe(details.errorInstance)}\n` +
        `${where(details.errorInstance)}` +
        `input: ${fc.stringify(example).slice(0, 4000)}`,
      { cause: details.errorInstance },
    );
  }
  return summary;
}

/** The process's peak resident memory so far (ru_maxrss). */
function peakResidentBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

function summaryLine(summary: FuzzSummary): Omit<FuzzSummary, 'target'> {
  const { target: _, ...rest } = summary;
  return rest;
}

/** The CkptError a call threw, or undefined when it returned; any other error propagates. */
async function outcomeOf(call: () => unknown): Promise<CkptError | undefined> {
  try {
    await call();
    return undefined;
  } catch (error) {
    if (error instanceof CkptError) return error;
    throw error;
  }
}

/** The first frames of an error's stack, to find the failing line without a rerun. */
function where(error: unknown): string {
  const frames =
    error instanceof Error ? (error.stack ?? '').split('\n').filter((l) => l.trim().startsWith('at ')) : [];
  return frames.length > 0 ? `${frames.slice(0, 6).join('\n')}\n` : '';
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function regressionFiles(folder: string | undefined): Array<[string, Uint8Array]> {
  if (!folder || !existsSync(folder)) return [];
  return readdirSync(folder)
    .filter((name) => name.endsWith('.bin'))
    .sort()
    .map((name) => [name, readFileSync(join(folder, name))]);
}

function saveFinding<T>(options: FuzzOptions<T>, input: T): string | undefined {
  if (!options.regressions || !options.bytesOf) return undefined;
  const bytes = options.bytesOf(input);
  mkdirSync(options.regressions, { recursive: true });
  const name = `${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.bin`;
  writeFileSync(join(options.regressions, name), bytes);
  return join(options.regressions, name);
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x7fffffff, 0x80000000, 0xffffffff];

/** One edit a mutation fuzzer makes; positions are taken modulo the length, so any edit applies to any input. */
type Edit =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'interesting'; at: number; value: number; width: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'remove'; at: number; length: number }
  | { kind: 'repeat'; at: number; length: number; times: number };

/**
 * Edits aimed at the first `focus` bytes (a header) or the last `tail` bytes
 * (a zip's directory), else anywhere. A negative position counts from the end.
 */
function edit(focus: number, tail: number): fc.Arbitrary<Edit> {
  const at = fc.oneof(
    { arbitrary: fc.nat(Math.max(0, focus - 1)), weight: focus > 0 ? 3 : 0 },
    { arbitrary: fc.integer({ min: -Math.max(1, tail), max: -1 }), weight: tail > 0 ? 3 : 0 },
    { arbitrary: fc.nat(), weight: 1 },
  );
  return fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at, bit: fc.nat(7) }),
    fc.record({ kind: fc.constant('set' as const), at, byte: fc.nat(255) }),
    fc.record({
      kind: fc.constant('interesting' as const),
      at,
      value: fc.constantFrom(...INTERESTING),
      width: fc.constantFrom(1, 2, 4),
    }),
    fc.record({ kind: fc.constant('truncate' as const), at }),
    fc.record({ kind: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('remove' as const), at, length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({
      kind: fc.constant('repeat' as const),
      at,
      length: fc.integer({ min: 1, max: 64 }),
      times: fc.integer({ min: 1, max: 32 }),
    }),
  );
}

/** `seed` with `edits` applied in order. */
export function applyEdits(seed: Uint8Array, edits: readonly Edit[]): Uint8Array {
  let out: Uint8Array = Uint8Array.from(seed);
  for (const e of edits) {
    const n = out.length;
    const at = n === 0 ? 0 : ((e.at % n) + n) % n;
    if (e.kind === 'truncate') out = out.slice(0, at);
    else if (e.kind === 'insert') out = concat(out.subarray(0, at), e.bytes, out.subarray(at));
    else if (n === 0) continue;
    else if (e.kind === 'flip') out[at] = (out[at] as number) ^ (1 << e.bit);
    else if (e.kind === 'set') out[at] = e.byte;
    else if (e.kind === 'interesting') {
      for (let i = 0; i < e.width && at + i < n; i++) out[at + i] = (e.value >>> (8 * i)) & 0xff;
    } else if (e.kind === 'remove') out = concat(out.subarray(0, at), out.subarray(Math.min(n, at + e.length)));
    else {
      const slice = out.slice(at, Math.min(n, at + e.length));
      out = concat(out.subarray(0, at), ...Array.from({ length: e.times }, () => slice), out.subarray(at));
    }
  }
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Mutants of the seed files: one to `maxEdits` edits, shrinking towards fewer edits and an unchanged seed. */
export function mutatedBytes(
  seeds: readonly Uint8Array[],
  options: { focus?: number; tail?: number; maxEdits?: number } = {},
): fc.Arbitrary<Uint8Array> {
  if (seeds.length === 0) throw new Error('mutatedBytes needs at least one seed');
  const edits = fc.array(edit(options.focus ?? 512, options.tail ?? 0), {
    minLength: 1,
    maxLength: options.maxEdits ?? 8,
  });
  return fc.tuple(fc.constantFrom(...seeds), edits).map(([seed, list]) => applyEdits(seed, list));
}

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

/**
 * Values a careless reader of JSON trips on, as JSON text (parsed afresh for
 * each use): objects whose `toString` is data, prototype keys, wrong types.
 */
const HOSTILE_JSON: readonly string[] = [
  '{"toString":1}',
  '{"valueOf":{},"toString":[]}',
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '[]',
  '{}',
  'null',
  '""',
  '-1',
  '1e308',
  String(2 ** 53 + 2),
  '"../../etc/passwd"',
  JSON.stringify('x'.repeat(5000)),
];

/**
 * Variants of a JSON document (its text): up to three of its values, keys'
 * values included, replaced by hostile ones. Where byte mutations mostly
 * break the syntax, these keep it and attack the reader's checks.
 */
export function hostileJsonVariants(seed: string): fc.Arbitrary<string> {
  const document: unknown = JSON.parse(seed);
  const paths: Array<Array<string | number>> = [];
  const stack: Array<[unknown, Array<string | number>]> = [[document, []]];
  for (let item = stack.pop(); item && paths.length < 10_000; item = stack.pop()) {
    const [value, path] = item;
    paths.push(path);
    if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) stack.push([v, [...path, i]]);
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) stack.push([v, [...path, k]]);
    }
  }
  const replacement = fc.tuple(fc.constantFrom(...paths), fc.constantFrom(...HOSTILE_JSON));
  return fc.array(replacement, { minLength: 1, maxLength: 3 }).map((replacements) => {
    let out: unknown = JSON.parse(seed);
    for (const [path, value] of replacements) {
      const fresh: unknown = JSON.parse(value);
      if (path.length === 0) {
        out = fresh;
        continue;
      }
      let parent = out as Record<string | number, unknown>;
      for (const step of path.slice(0, -1)) {
        const next = parent?.[step];
        if (next === null || typeof next !== 'object') break;
        parent = next as Record<string | number, unknown>;
      }
      if (parent !== null && typeof parent === 'object') {
        Object.defineProperty(parent, path[path.length - 1] as string | number, {
          value: fresh,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
    }
    return JSON.stringify(out);
  });
}
