/**
 * Writing safetensors exactly as the reference writer does: tensors ordered by
 * descending dtype alignment then by name, compact JSON with `__metadata__`
 * first, the header padded with spaces to a multiple of 8.
 */
import { ConflictError, type DType, InvalidArgumentError, type Tensor, UnsupportedError } from '@ckpt/core';
import { type ProgressCallback, writeFileAtomic } from '@ckpt/native';
import { LENGTH_PREFIX_BYTES, MAX_HEADER_BYTES } from './header.js';

/** The reference's dtype enum order; it sorts by it, descending. */
const DTYPE_ORDER: readonly DType[] = [
  'BOOL',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'C64',
  'F64',
  'I64',
  'U64',
];
const RANK = new Map(DTYPE_ORDER.map((d, i) => [d, i]));

/** Every dtype safetensors can store (all of ckpt's but C128). */
export const SAFETENSORS_DTYPES: readonly DType[] = DTYPE_ORDER;

const utf8 = new TextEncoder();

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function checkText(text: string, what: string): void {
  if (!text.isWellFormed()) {
    throw new InvalidArgumentError(`${what} ${JSON.stringify(text)} holds an unpaired surrogate: it has no UTF-8 form`);
  }
}

export interface FilePlan {
  /** The 8-byte length followed by the padded JSON header. */
  head: Uint8Array;
  /** Tensors in the order their bytes follow the header. */
  ordered: Array<[string, Tensor]>;
  /** Total file size. */
  size: number;
}

/** Lays out one safetensors file: header bytes and tensor order. */
export function planFile(entries: ReadonlyArray<[string, Tensor]>, metadata?: Record<string, string>): FilePlan {
  const seen = new Set<string>();
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new InvalidArgumentError('a tensor cannot be named __metadata__');
    if (seen.has(name)) throw new ConflictError(`two tensors are named ${JSON.stringify(name)}`);
    seen.add(name);
    checkText(name, 'tensor name');
    if (!RANK.has(t.dtype)) {
      throw new UnsupportedError(`safetensors cannot store ${t.dtype} (tensor ${JSON.stringify(name)})`, {
        expected: `one of ${DTYPE_ORDER.join(', ')}`,
        found: t.dtype,
      });
    }
  }
  const ordered = [...entries].sort(
    ([an, a], [bn, b]) => (RANK.get(b.dtype) ?? 0) - (RANK.get(a.dtype) ?? 0) || compareUtf8(an, bn),
  );

  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    const keys = Object.keys(metadata).sort(compareUtf8);
    const fields = keys.map((k) => {
      const v = metadata[k];
      if (typeof v !== 'string')
        throw new InvalidArgumentError(`metadata values must be strings; ${JSON.stringify(k)} is not`);
      checkText(k, 'metadata key');
      checkText(v, 'metadata value');
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${fields.join(',')}}`);
  }
  let offset = 0;
  for (const [name, t] of ordered) {
    const end = offset + t.data.byteLength;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = utf8.encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded > MAX_HEADER_BYTES) {
    throw new UnsupportedError(
      `the safetensors header would be ${padded} bytes, over the ${MAX_HEADER_BYTES}-byte limit`,
    );
  }
  const head = new Uint8Array(LENGTH_PREFIX_BYTES + padded).fill(0x20, LENGTH_PREFIX_BYTES + json.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, LENGTH_PREFIX_BYTES);
  return { head, ordered, size: head.byteLength + offset };
}

export interface WriteFileOptions {
  fsync?: boolean;
  onProgress?: ProgressCallback;
}

/** Writes one safetensors file atomically; the digest comes from the same pass. */
export async function writeSafetensors(
  path: string,
  entries: ReadonlyArray<[string, Tensor]>,
  metadata: Record<string, string> | undefined,
  options: WriteFileOptions = {},
): Promise<{ path: string; size: number; sha256: string }> {
  const plan = planFile(entries, metadata);
  const written = await writeFileAtomic(path, [plan.head, ...plan.ordered.map(([, t]) => t.data)], options);
  return { path, size: written.size, sha256: written.sha256 };
}
