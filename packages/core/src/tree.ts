import { ConflictError, InvalidArgumentError } from './errors.js';
import { LIMITS, limitExceeded } from './limits.js';
import { isTensor, type Tensor } from './tensor.js';

/**
 * A Python tuple. Arrays are lists; a Tuple keeps the difference through a
 * round trip (optimizer `betas`, shapes). Make one with `Tuple.of(a, b)`.
 */
export class Tuple<T = StateValue> extends Array<T> {
  static override of<T>(...items: T[]): Tuple<T> {
    return Tuple.fromItems(items);
  }

  /** A tuple of `items`, of any length (spreading a long list into arguments overflows the stack). */
  static fromItems<T>(items: readonly T[]): Tuple<T> {
    const t = new Tuple<T>();
    for (const item of items) t.push(item);
    return t;
  }
}

/** Keys a Map in a state tree may have (Python dicts allow ints, tuples, ...). */
export type StateKey = string | number | bigint | boolean | null | Tuple<StateKey>;

/** A leaf or branch of a state tree. Uint8Array is raw bytes (Python `bytes`). */
export type StateValue =
  | Tensor
  | number
  | bigint
  | string
  | boolean
  | null
  | undefined
  | Uint8Array
  | StateValue[]
  | Tuple
  | Map<StateKey, StateValue>
  | Set<StateValue>
  | StateObject;

export interface StateObject {
  [key: string]: StateValue;
}

/** What storage backends save and load: a record at the top. */
export type StateTree = StateObject;

export function isPlainObject(value: unknown): value is StateObject {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The children of a branch as [key, value] pairs, or undefined for a leaf. */
export function childrenOf(value: StateValue): Array<[StateKey, StateValue]> | undefined {
  if (isTensor(value) || value instanceof Uint8Array) return undefined;
  if (Array.isArray(value)) return value.map((v, i) => [i, v]);
  if (value instanceof Map) return [...value.entries()];
  if (value instanceof Set) return [...value].map((v, i) => [i, v]);
  if (isPlainObject(value)) return Object.entries(value);
  return undefined;
}

/** How a key appears in a dotted path: tuples as comma-joined items. */
export function keySegment(key: StateKey): string {
  return key instanceof Tuple ? key.map(keySegment).join(',') : String(key);
}

/** `path.key`, or `key` at the top. */
export function joinPath(path: string, key: StateKey, separator = '.'): string {
  return path === '' ? keySegment(key) : `${path}${separator}${keySegment(key)}`;
}

/**
 * Every tensor in the tree with its dotted path (`model.fc1.weight`,
 * `optimizer.state.0.exp_avg`), depth first in insertion order. Two tensors
 * reaching the same path (`{'a.b': x, a: {b: y}}`) are a ConflictError.
 */
export function flattenTensors(tree: StateValue, separator = '.'): Array<[string, Tensor]> {
  const seen = new Set<string>();
  return collectLeaves(tree, isTensor, separator, (path) => {
    if (seen.has(path)) {
      throw new ConflictError(`two tensors flatten to the same name ${JSON.stringify(path)}`, { found: path });
    }
    seen.add(path);
  });
}

/**
 * Every value `accept` takes (a tensor, a stub) with its dotted path, depth
 * first in insertion order. An explicit stack, not recursion: decoded data
 * may nest deeper than the call stack, and a branch shared many times (a
 * pickle's memo) is walked each time, so visits count against
 * LIMITS.treeNodes (CKPT_MAX_TREE_NODES) and a billion laughs ends in a
 * LimitError instead of running out of memory.
 */
export function collectLeaves<T>(
  tree: unknown,
  accept: (value: unknown) => value is T,
  separator = '.',
  onLeaf?: (path: string) => void,
): Array<[string, T]> {
  const out: Array<[string, T]> = [];
  const stack: Array<[unknown, string]> = [[tree, '']];
  let visits = 0;
  while (stack.length > 0) {
    const [value, path] = stack.pop() as [unknown, string];
    if (++visits > LIMITS.treeNodes) throw limitExceeded('the state tree has too many nodes to walk', 'treeNodes');
    if (accept(value)) {
      onLeaf?.(path);
      out.push([path, value]);
      continue;
    }
    const children = childrenOf(value as StateValue);
    if (!children) continue;
    for (let i = children.length - 1; i >= 0; i--) {
      const [key, child] = children[i] as [StateKey, StateValue];
      stack.push([child, joinPath(path, key, separator)]);
    }
  }
  return out;
}

/**
 * Nested objects from dotted paths: `{'a.b': 1}` becomes `{a: {b: 1}}`. Every
 * segment becomes an object key (a numeric segment does not make an array).
 * A path that is both a leaf and a branch is a ConflictError.
 */
export function unflatten(entries: Iterable<[string, StateValue]>, separator = '.'): StateObject {
  // Names come from files: `__proto__.polluted` must stay two ordinary keys (setEntry, getEntry).
  const root: StateObject = {};
  for (const [path, value] of entries) {
    const segments = path.split(separator);
    let node = root;
    for (const [i, segment] of segments.entries()) {
      if (i === segments.length - 1) {
        if (Object.hasOwn(node, segment)) throw new ConflictError(`path ${JSON.stringify(path)} is set twice`);
        setEntry(node, segment, value);
        break;
      }
      const next = getEntry(node, segment);
      if (next === undefined) {
        const branch: StateObject = {};
        setEntry(node, segment, branch);
        node = branch;
      } else if (isPlainObject(next) && !isTensor(next)) {
        node = next;
      } else {
        throw new ConflictError(`path ${JSON.stringify(path)} runs through a leaf at ${JSON.stringify(segment)}`);
      }
    }
  }
  return root;
}

/**
 * Sets `object[key]` as an own property, whatever the key: a key from a file
 * such as `__proto__` stays an ordinary key and never changes the object's
 * prototype. State trees keep Object.prototype, so a loaded tree equals the
 * saved one, even strictly.
 */
export function setEntry(object: object, key: string, value: unknown): void {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A record without a prototype from entries read from a file: no key can reach or shadow `Object.prototype`. */
export function bareRecord<T>(entries: Iterable<readonly [string, T]>): Record<string, T> {
  const out: Record<string, T> = Object.create(null);
  for (const [key, value] of entries) out[key] = value;
  return out;
}

/** `object[key]` only when it is the object's own property (`__proto__` of `{}` is not an entry). */
export function getEntry<T>(object: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** True for a record whose every value is a tensor: a plain state dict. */
export function isFlatTensorRecord(tree: StateValue): tree is Record<string, Tensor> {
  return isPlainObject(tree) && Object.values(tree).every(isTensor);
}

/** Calls `visit` on every tensor with its dotted path. */
export function forEachTensor(tree: StateValue, visit: (tensor: Tensor, path: string) => void): void {
  for (const [path, t] of flattenTensors(tree)) visit(t, path);
}

/** Rebuilds the tree with every tensor replaced by `map(tensor, path)`; other values are kept. */
export function mapTensors(tree: StateValue, map: (tensor: Tensor, path: string) => Tensor, path = ''): StateValue {
  const join = (key: StateKey) => joinPath(path, key);
  if (isTensor(tree)) return map(tree, path);
  if (tree instanceof Tuple) return Tuple.fromItems(tree.map((v, i) => mapTensors(v, map, join(i))));
  if (Array.isArray(tree)) return tree.map((v, i) => mapTensors(v, map, join(i)));
  if (tree instanceof Map) {
    return new Map([...tree].map(([k, v]) => [k, mapTensors(v, map, join(k))] as [StateKey, StateValue]));
  }
  if (tree instanceof Set) return new Set([...tree].map((v, i) => mapTensors(v, map, join(i))));
  if (isPlainObject(tree)) {
    return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, mapTensors(v, map, join(k))]));
  }
  return tree;
}

/** Throws an InvalidArgumentError naming the first value a state tree cannot hold. */
export function assertStateTree(tree: unknown, where = 'state'): asserts tree is StateTree {
  if (!isPlainObject(tree)) {
    throw new InvalidArgumentError(`${where} must be a plain object at the top`, {
      found: Object.prototype.toString.call(tree),
    });
  }
  const check = (value: unknown, path: string): void => {
    if (value === null || value === undefined || isTensor(value) || value instanceof Uint8Array) return;
    switch (typeof value) {
      case 'number':
      case 'bigint':
      case 'string':
      case 'boolean':
        return;
      case 'object': {
        const children = childrenOf(value as StateValue);
        if (children) {
          for (const [k, v] of children) check(v, `${path}.${keySegment(k)}`);
          return;
        }
      }
    }
    throw new InvalidArgumentError(`${path} cannot be stored in a checkpoint`, {
      expected: 'a tensor, number, bigint, string, boolean, null, bytes, array, Tuple, Map, Set or plain object',
      found: typeof value === 'object' ? Object.prototype.toString.call(value) : typeof value,
    });
  };
  check(tree, where);
}
