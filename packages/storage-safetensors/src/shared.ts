/**
 * Tensors sharing memory (tied weights, such as an embedding reused as the
 * output layer). safetensors stores each name's bytes separately, so the
 * reference `save_file` refuses shared tensors; `save_model` (and
 * transformers) keep one name and drop the others. We do the same on request
 * and record the dropped names, so loading ties them again.
 */
import { ConflictError, type Tensor } from '@ckpt/core';

/** `error` (default) refuses tied weights; `dedupe` stores them once and re-ties them on load. */
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

function sameView(a: Placed, b: Placed): boolean {
  return (
    a.start === b.start &&
    a.end === b.end &&
    a.tensor.dtype === b.tensor.dtype &&
    a.tensor.shape.length === b.tensor.shape.length &&
    a.tensor.shape.every((d, i) => d === b.tensor.shape[i])
  );
}

/** Finds tensors over the same memory; refuses or de-duplicates them as `mode` says. */
export function resolveSharedTensors(entries: ReadonlyArray<[string, Tensor]>, mode: TiedWeights): Deduplicated {
  const byBuffer = new Map<ArrayBufferLike, Placed[]>();
  for (const [name, tensor] of entries) {
    if (tensor.data.byteLength === 0) continue;
    const start = tensor.data.byteOffset;
    const list = byBuffer.get(tensor.data.buffer) ?? [];
    list.push({ name, tensor, start, end: start + tensor.data.byteLength });
    byBuffer.set(tensor.data.buffer, list);
  }

  const groups: Placed[][] = [];
  for (const placed of byBuffer.values()) {
    if (placed.length < 2) continue;
    placed.sort((a, b) => a.start - b.start || a.end - b.end);
    let group: Placed[] = [placed[0] as Placed];
    for (const next of placed.slice(1)) {
      const head = group[0] as Placed;
      const reach = Math.max(...group.map((p) => p.end));
      if (next.start >= reach) {
        if (group.length > 1) groups.push(group);
        group = [next];
      } else if (sameView(head, next)) {
        group.push(next);
      } else {
        throw new ConflictError(
          `tensors ${JSON.stringify(head.name)} and ${JSON.stringify(next.name)} overlap in memory without being the same tensor; copy one of them before saving`,
          { found: `bytes [${head.start}, ${head.end}) and [${next.start}, ${next.end}) of one buffer` },
        );
      }
    }
    if (group.length > 1) groups.push(group);
  }

  if (groups.length === 0) return { unique: [...entries], aliases: {} };
  const described = groups.map((g) => g.map((p) => p.name).join(' = ')).join('; ');
  if (mode === 'error') {
    throw new ConflictError(
      `some tensors share memory (tied weights): ${described}. safetensors stores each name separately; save with { tiedWeights: 'dedupe' } to store them once and re-tie them on load`,
      { found: described },
    );
  }
  const aliases: Record<string, string> = {};
  for (const group of groups) {
    const [kept, ...dropped] = group.map((p) => p.name).sort(compareUtf8);
    for (const name of dropped) aliases[name] = kept as string;
  }
  return { unique: entries.filter(([name]) => !(name in aliases)), aliases };
}
