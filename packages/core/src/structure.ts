/**
 * A state tree split into named tensors and a JSON "structure" that holds
 * everything else, so formats that store only a flat list of named tensors
 * (safetensors) can still return the exact tree: nesting, lists, tuples, Maps
 * with any keys, NaN and infinities, bigints, bytes, null and undefined.
 *
 * In the structure, a tensor is `{"$tensor": name}`; values JSON cannot hold
 * are tagged: `$float` ("NaN", "Infinity", "-Infinity", "-0"), `$bigint`,
 * `$bytes` (base64), `$undefined`, `$tuple`, `$set`, `$map` (entry pairs), and
 * `$object` (entry pairs, for records whose keys start with `$`).
 */
import { FormatError } from './errors.js';
import { LIMITS, limitExceeded } from './limits.js';
import { isTensor, type Tensor } from './tensor.js';
import {
  flattenTensors,
  isPlainObject,
  joinPath,
  type StateKey,
  type StateObject,
  type StateTree,
  type StateValue,
  setEntry,
  Tuple,
} from './tree.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface SplitTree {
  /** Every tensor under its dotted path, in tree order. The same tensor object may appear under several names. */
  tensors: Array<[string, Tensor]>;
  structure: JsonValue;
}

export function splitTree(tree: StateTree): SplitTree {
  return { tensors: flattenTensors(tree), structure: encode(tree, '') };
}

function encodeNumber(value: number): JsonValue {
  if (Number.isNaN(value)) return { $float: 'NaN' };
  if (value === Infinity) return { $float: 'Infinity' };
  if (value === -Infinity) return { $float: '-Infinity' };
  if (Object.is(value, -0)) return { $float: '-0' };
  return value;
}

function encodeKey(key: StateKey): JsonValue {
  if (key instanceof Tuple) return { $tuple: key.map(encodeKey) };
  if (typeof key === 'bigint') return { $bigint: key.toString() };
  if (typeof key === 'number') return encodeNumber(key);
  return key;
}

function encode(value: StateValue, path: string): JsonValue {
  if (isTensor(value)) return { $tensor: path };
  if (value === undefined) return { $undefined: 1 };
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return encodeNumber(value);
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('base64') };
  if (value instanceof Tuple) return { $tuple: value.map((v, i) => encode(v, joinPath(path, i))) };
  if (Array.isArray(value)) return value.map((v, i) => encode(v, joinPath(path, i)));
  if (value instanceof Map) return { $map: [...value].map(([k, v]) => [encodeKey(k), encode(v, joinPath(path, k))]) };
  if (value instanceof Set) return { $set: [...value].map((v, i) => encode(v, joinPath(path, i))) };
  if (isPlainObject(value)) {
    const entries = Object.entries(value);
    if (entries.some(([k]) => k.startsWith('$'))) {
      return { $object: entries.map(([k, v]) => [k, encode(v, joinPath(path, k))]) };
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, encode(v, joinPath(path, k))]));
  }
  throw new FormatError(`cannot encode the value at ${path || 'the top'}`);
}

/** Rebuilds the tree from a structure, taking tensors by name from `lookup`. */
export function joinTree(structure: JsonValue, lookup: (name: string) => Tensor | undefined): StateTree {
  const tree = decode(structure, lookup, 0);
  if (!isPlainObject(tree)) throw new FormatError('the stored structure is not a record at the top');
  return tree;
}

function bad(what: string): FormatError {
  return new FormatError(`the stored structure is malformed: ${what}`);
}

function decodeNumber(text: JsonValue): number {
  switch (text) {
    case 'NaN':
      return Number.NaN;
    case 'Infinity':
      return Infinity;
    case '-Infinity':
      return -Infinity;
    case '-0':
      return -0;
    default:
      throw bad(`unknown $float ${JSON.stringify(text)}`);
  }
}

function pairs(value: JsonValue | undefined, tag: string): Array<[JsonValue, JsonValue]> {
  if (!Array.isArray(value) || !value.every((p) => Array.isArray(p) && p.length === 2)) {
    throw bad(`${tag} must hold [key, value] pairs`);
  }
  return value as Array<[JsonValue, JsonValue]>;
}

function decodeKey(value: JsonValue, depth: number): StateKey {
  const decoded = decode(value, () => undefined, depth);
  if (
    decoded === null ||
    typeof decoded === 'string' ||
    typeof decoded === 'number' ||
    typeof decoded === 'bigint' ||
    typeof decoded === 'boolean' ||
    decoded instanceof Tuple
  ) {
    return decoded as StateKey;
  }
  throw bad('a Map key must be a string, number, bigint, boolean, null or tuple');
}

// Recursive, but bounded: the structure comes from a file, and past LIMITS.depth levels it is refused.
function decode(value: JsonValue, lookup: (name: string) => Tensor | undefined, depth: number): StateValue {
  if (value === null || typeof value !== 'object') return value;
  if (depth > LIMITS.depth) throw limitExceeded('the stored structure nests too deep', 'depth');
  const inside = (v: JsonValue) => decode(v, lookup, depth + 1);
  if (Array.isArray(value)) return value.map(inside);
  const keys = Object.keys(value);
  const tag = keys.length === 1 ? keys[0] : undefined;
  const inner = tag === undefined ? undefined : value[tag];
  switch (tag) {
    case '$tensor': {
      if (typeof inner !== 'string') throw bad('$tensor must name a tensor');
      const found = lookup(inner);
      if (!found)
        throw new FormatError(`the structure refers to tensor ${JSON.stringify(inner)}, which the file lacks`);
      return found;
    }
    case '$float':
      return decodeNumber(inner as JsonValue);
    case '$bigint':
      if (typeof inner !== 'string' || !/^-?\d+$/.test(inner)) throw bad('$bigint must be a decimal string');
      return BigInt(inner);
    case '$bytes':
      if (typeof inner !== 'string') throw bad('$bytes must be base64');
      return new Uint8Array(Buffer.from(inner, 'base64'));
    case '$undefined':
      return undefined;
    case '$tuple':
      if (!Array.isArray(inner)) throw bad('$tuple must be a list');
      return Tuple.fromItems(inner.map(inside));
    case '$set':
      if (!Array.isArray(inner)) throw bad('$set must be a list');
      return new Set(inner.map(inside));
    case '$map':
      return new Map(pairs(inner, '$map').map(([k, v]) => [decodeKey(k, depth + 1), inside(v)]));
    case '$object': {
      // Keys come from the file: `__proto__` must stay an ordinary key.
      const out: StateObject = {};
      for (const [k, v] of pairs(inner, '$object')) {
        if (typeof k !== 'string') throw bad('$object keys must be strings');
        setEntry(out, k, inside(v));
      }
      return out;
    }
    default: {
      if (keys.some((k) => k.startsWith('$'))) throw bad(`unknown tag in ${JSON.stringify(keys)}`);
      const out: StateObject = {};
      for (const k of keys) setEntry(out, k, inside(value[k] as JsonValue));
      return out;
    }
  }
}
