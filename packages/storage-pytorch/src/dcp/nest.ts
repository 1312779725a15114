/**
 * Rebuilding the nested state dict DCP flattened: each flattened key has a
 * path (`('optim', 'state', 0, 'exp_avg')`) in the metadata's planner data;
 * names make objects and indices make lists. Iterative; objects built from
 * the file never inherit from Object.prototype.
 */
import { FormatError, type StateTree, type StateValue } from '@ckpt/core';

/** The largest list index a path may name (a list is built densely). */
const MAX_INDEX = 1_000_000;

type Branch = Record<string, StateValue> | StateValue[];

function newBranch(next: string | number): Branch {
  return typeof next === 'number' ? [] : Object.create(null);
}

function setChild(branch: Branch, part: string | number, value: StateValue): void {
  if (Array.isArray(branch)) branch[part as number] = value;
  else Object.defineProperty(branch, part, { value, enumerable: true, writable: true, configurable: true });
}

export function nestByPaths(
  flat: ReadonlyArray<readonly [string, StateValue]>,
  paths: ReadonlyMap<string, readonly (string | number)[]>,
  where: string,
): StateTree {
  const root: Record<string, StateValue> = Object.create(null);
  const lists: StateValue[][] = [];
  const built = new Set<object>([root]);
  for (const [fqn, value] of flat) {
    const path = paths.get(fqn) ?? [fqn];
    if (typeof path[0] !== 'string')
      throw new FormatError(`${fqn}: its path starts with a list index`, { path: where });
    let branch: Branch = root;
    for (let i = 0; i < path.length; i++) {
      const part = path[i] as string | number;
      if (Array.isArray(branch) !== (typeof part === 'number'))
        throw new FormatError(`${fqn}: its path mixes a list and an object at ${JSON.stringify(part)}`, {
          path: where,
        });
      if (typeof part === 'number' && (part < 0 || part > MAX_INDEX))
        throw new FormatError(`${fqn}: its path has the list index ${part}`, { path: where });
      const existing = Object.hasOwn(branch, part) ? (branch as Record<string, StateValue>)[part] : undefined;
      if (i === path.length - 1) {
        if (existing !== undefined) throw new FormatError(`${fqn}: two entries have the same path`, { path: where });
        setChild(branch, part, value);
        break;
      }
      const next = path[i + 1] as string | number;
      if (existing === undefined) {
        const child = newBranch(next);
        if (Array.isArray(child)) lists.push(child);
        built.add(child);
        setChild(branch, part, child as StateValue);
        branch = child;
      } else if (typeof existing === 'object' && existing !== null && built.has(existing)) {
        branch = existing as Branch;
      } else {
        throw new FormatError(`${fqn}: its path runs through another entry's value`, { path: where });
      }
    }
  }
  for (const list of lists) {
    for (let i = 0; i < list.length; i++)
      if (!(i in list)) throw new FormatError(`a list in the state dict has no item ${i}`, { path: where });
  }
  return root;
}
