/**
 * Tensors sharing memory (tied weights, such as an embedding reused as the
 * output layer). safetensors stores each name's bytes separately, so the
 * reference `save_file` refuses shared tensors; `save_model` (and
 * transformers) keep one name and drop the others. We do the same on request
 * and record the dropped names, so loading ties them again.
 */
import { ConflictError, type Tensor } from '@ckpt/core';

/**
 * `error` (default) refuses tensors that share memory. `dedupe` stores tied
 * weights (the same bytes under several names) once and re-ties them on load,
 * and stores tensors that merely overlap (views of one buffer) as copies.
 */
export type TiedWeights = 'error' | 'dedupe';

export interface Deduplicated {
  /** One entry per distinct tensor. */
  unique: Array<[string, Tensor]>;
  /** Dropped name -> the name kept for the same bytes. */
  aliases: Record<string, string>;
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

interface Placed {
  name: string;
  tensor: Tensor;
  start: number;
  end: number;
}

/** Finds tensors over the same memory; refuses or de-duplicates them as `mode` says. */
export function resolveSharedTensors(entries: ReadonlyArray<[string, Tensor]>, mode: TiedWeights): Deduplicated {
  // Identical views (same buffer, bytes, dtype and shape) are tied weights.
  const bufferIds = new Map<ArrayBufferLike, number>();
  const byView = new Map<string, Placed[]>();
  const byBuffer = new Map<ArrayBufferLike, Placed[]>();
  for (const [name, tensor] of entries) {
    if (tensor.data.byteLength === 0) continue;
    const { buffer, byteOffset: start, byteLength } = tensor.data;
    if (!bufferIds.has(buffer)) bufferIds.set(buffer, bufferIds.size);
    const placed = { name, tensor, start, end: start + byteLength };
    const key = `${bufferIds.get(buffer)}:${start}:${byteLength}:${tensor.dtype}:${tensor.shape.join(',')}`;
    const view = byView.get(key);
    if (view) view.push(placed);
    else {
      byView.set(key, [placed]);
      byBuffer.set(buffer, [...(byBuffer.get(buffer) ?? []), placed]);
    }
  }

  // Distinct views that overlap are not tied weights: safetensors has no views.
  if (mode === 'error') {
    for (const views of byBuffer.values()) {
      views.sort((a, b) => a.start - b.start);
      for (let i = 1; i < views.length; i++) {
        const previous = views.slice(0, i).reduce((far, v) => (v.end > far.end ? v : far));
        const next = views[i] as Placed;
        if (next.start < previous.end) {
          throw new ConflictError(
            `tensors ${JSON.stringify(previous.name)} and ${JSON.stringify(next.name)} overlap in memory without being the same tensor; save with { tiedWeights: 'dedupe' } to write each out whole, or copy one first`,
            { found: `bytes [${previous.start}, ${previous.end}) and [${next.start}, ${next.end}) of one buffer` },
          );
        }
      }
    }
  }

  const groups = [...byView.values()].filter((g) => g.length > 1);
  if (groups.length === 0) return { unique: [...entries], aliases: {} };
  const described = groups.map((g) => g.map((p) => p.name).join(' = ')).join('; ');
  if (mode === 'error') {
    throw new ConflictError(
      `some tensors share memory (tied weights): ${described}. safetensors stores each name separately; save with { tiedWeights: 'dedupe' } to store them once and re-tie them on load`,
      { found: described },
    );
  }
  const aliases: Record<string, string> = Object.create(null); // a tensor may be named `__proto__`
  for (const group of groups) {
    const [kept, ...dropped] = group.map((p) => p.name).sort(compareUtf8);
    for (const name of dropped) aliases[name] = kept as string;
  }
  return { unique: entries.filter(([name]) => !(name in aliases)), aliases };
}
