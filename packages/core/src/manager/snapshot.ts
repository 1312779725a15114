/**
 * Snapshots a state tree before an asynchronous save returns, so the caller
 * may keep training (and mutating its tensors) while the write goes on.
 */
import type { Tensor } from '../tensor.js';
import { mapTensors, type StateTree } from '../tree.js';

/**
 * Copies every tensor's bytes, once per underlying buffer: tensors that are
 * views of one buffer (tied weights, torch views) stay views of one copy, so
 * the backend sees the same sharing it would have seen without the snapshot.
 * Containers are rebuilt, so later changes to the caller's objects do not leak in.
 */
export function snapshotState(state: StateTree, copyBytes = true): StateTree {
  if (!copyBytes) return mapTensors(state, (t) => t) as StateTree;
  const ranges = new Map<ArrayBufferLike, { start: number; end: number }>();
  mapTensors(state, (t) => {
    const { buffer, byteOffset, byteLength } = t.data;
    const range = ranges.get(buffer);
    if (range) {
      range.start = Math.min(range.start, byteOffset);
      range.end = Math.max(range.end, byteOffset + byteLength);
    } else {
      ranges.set(buffer, { start: byteOffset, end: byteOffset + byteLength });
    }
    return t;
  });
  const copies = new Map<ArrayBufferLike, { start: number; bytes: Uint8Array }>();
  for (const [buffer, { start, end }] of ranges) {
    const bytes = new Uint8Array(end - start);
    bytes.set(new Uint8Array(buffer, start, end - start));
    copies.set(buffer, { start, bytes });
  }
  const done = new Map<Tensor, Tensor>();
  return mapTensors(state, (t) => {
    const seen = done.get(t);
    if (seen) return seen;
    const copy = copies.get(t.data.buffer);
    if (!copy) return t;
    const data = copy.bytes.subarray(
      t.data.byteOffset - copy.start,
      t.data.byteOffset - copy.start + t.data.byteLength,
    );
    const result: Tensor = { ...t, data }; // keeps any extra fields a backend attached
    done.set(t, result);
    return result;
  }) as StateTree;
}
