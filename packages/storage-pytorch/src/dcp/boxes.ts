/**
 * The geometry of chunked tensors: boxes (offsets + sizes) in a row-major
 * tensor, whether a tensor's chunks overlap, and copying one box's bytes
 * from a chunk into a region. Everything is iterative and bounded.
 */
import { FormatError } from '@ckpt/core';
import type { DcpChunk } from './metadata.js';

/** Pair comparisons the overlap check may make for one tensor before it gives up. */
const MAX_COMPARISONS = 50_000_000;

export function volume(sizes: readonly number[]): number {
  let n = 1;
  for (const size of sizes) n *= size;
  return n;
}

function overlaps(a: DcpChunk, b: DcpChunk): boolean {
  for (let d = 0; d < a.offsets.length; d++) {
    const aStart = a.offsets[d] as number;
    const bStart = b.offsets[d] as number;
    if (aStart >= bStart + (b.sizes[d] as number) || bStart >= aStart + (a.sizes[d] as number)) return false;
  }
  return true;
}

/** The box where `a` and `b` meet, or undefined when they do not. */
export function intersect(a: DcpChunk, b: DcpChunk): DcpChunk | undefined {
  const offsets: number[] = [];
  const sizes: number[] = [];
  for (let d = 0; d < a.offsets.length; d++) {
    const start = Math.max(a.offsets[d] as number, b.offsets[d] as number);
    const end = Math.min(
      (a.offsets[d] as number) + (a.sizes[d] as number),
      (b.offsets[d] as number) + (b.sizes[d] as number),
    );
    if (end <= start) return undefined;
    offsets.push(start);
    sizes.push(end - start);
  }
  return { offsets, sizes };
}

/**
 * Throws when two chunks of `fqn` share an element: a file could otherwise
 * hide a hole behind a doubled chunk. A sweep along the first dimension
 * compares only chunks whose rows meet.
 */
export function checkDisjoint(fqn: string, chunks: readonly DcpChunk[], path: string): void {
  const solid = chunks.filter((c) => volume(c.sizes) > 0);
  if (solid.length < 2) return;
  if ((solid[0] as DcpChunk).offsets.length === 0)
    throw new FormatError(`${fqn}: a scalar stored as ${solid.length} chunks`, { path });
  const start = (c: DcpChunk) => c.offsets[0] as number;
  const end = (c: DcpChunk) => start(c) + (c.sizes[0] as number);
  const sorted = [...solid].sort((a, b) => start(a) - start(b));
  let active: DcpChunk[] = [];
  let comparisons = 0;
  for (const chunk of sorted) {
    active = active.filter((other) => end(other) > start(chunk));
    for (const other of active) {
      if (++comparisons > MAX_COMPARISONS)
        throw new FormatError(`${fqn}: too many chunks to check for overlaps (${chunks.length})`, { path });
      if (overlaps(chunk, other))
        throw new FormatError(
          `${fqn}: chunks at [${chunk.offsets.join(', ')}] and [${other.offsets.join(', ')}] overlap`,
          { path },
        );
    }
    active.push(chunk);
  }
}

/**
 * Copies `box` (in tensor coordinates) from `source`, the bytes of chunk
 * `from`, into `target`, the bytes of region `into`. In runs: the trailing
 * dimensions that all three span whole are contiguous in both, so a box of
 * whole rows is one copy.
 */
export function copyBox(
  source: Uint8Array,
  from: DcpChunk,
  target: Uint8Array,
  into: DcpChunk,
  box: DcpChunk,
  elementSize: number,
): void {
  const rank = box.sizes.length;
  if (rank === 0) {
    target.set(source.subarray(0, elementSize), 0);
    return;
  }
  const strides = (sizes: readonly number[]) => {
    const out = new Array<number>(rank).fill(1);
    for (let d = rank - 2; d >= 0; d--) out[d] = (out[d + 1] as number) * (sizes[d + 1] as number);
    return out;
  };
  const sourceStrides = strides(from.sizes);
  const targetStrides = strides(into.sizes);
  // The run starts at the outermost dimension after which every dimension is whole in all three.
  let first = rank - 1;
  const whole = (d: number) => box.sizes[d] === from.sizes[d] && box.sizes[d] === into.sizes[d];
  while (first > 0 && whole(first)) first--;
  const run = volume(box.sizes.slice(first)) * elementSize;
  const index = new Array<number>(first).fill(0);
  const runs = volume(box.sizes.slice(0, first));
  for (let n = 0; n < runs; n++) {
    let s = 0;
    let t = 0;
    for (let d = 0; d < rank; d++) {
      const at = (box.offsets[d] as number) + (d < first ? (index[d] as number) : 0);
      s += (at - (from.offsets[d] as number)) * (sourceStrides[d] as number);
      t += (at - (into.offsets[d] as number)) * (targetStrides[d] as number);
    }
    target.set(source.subarray(s * elementSize, s * elementSize + run), t * elementSize);
    // The next run: count up the index, innermost counted dimension first.
    for (let d = first - 1; d >= 0; d--) {
      index[d] = (index[d] as number) + 1;
      if ((index[d] as number) < (box.sizes[d] as number)) break;
      index[d] = 0;
    }
  }
}
