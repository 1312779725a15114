/**
 * Tensors from torch storages: a storage is a record of the archive (or a
 * range of a legacy file); a tensor is a view of it with an offset, a shape
 * and strides. Views that are contiguous stay zero-copy views of the file;
 * others are copied into C order, within a budget so that a hostile file
 * (a stride-0 view of 10^12 elements, say) cannot exhaust memory.
 */
import { type DType, dtypeInfo, FormatError, type Tensor, tensor, UnsupportedError } from '@ckpt/core';
import { withPython } from './pickle/values.js';

/** A storage as a persistent id named it, with its bytes. */
export interface StorageRef {
  readonly key: string;
  /** The element type, or undefined for an UntypedStorage (bytes). */
  readonly dtype: DType | undefined;
  /** Bytes of the storage (empty when only its size is known, for inspect). */
  readonly bytes: Uint8Array;
  /** Its length in bytes. */
  readonly byteLength: number;
  /** Whether `bytes` are big-endian (a file saved on a big-endian machine). */
  readonly bigEndian: boolean;
}

export function isStorageRef(value: unknown): value is StorageRef {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'storage';
}

export function makeStorage(
  key: string,
  dtype: DType | undefined,
  bytes: Uint8Array,
  bigEndian: boolean,
  byteLength = bytes.byteLength,
): StorageRef {
  return Object.freeze({ kind: 'storage', key, dtype, bytes, byteLength, bigEndian }) as StorageRef;
}

/** Copies a strided view (offset, shape and strides in elements) into new C-ordered bytes. */
export function gatherStrided(
  source: Uint8Array,
  elementSize: number,
  offset: number,
  shape: readonly number[],
  strides: readonly number[],
): Uint8Array {
  const count = shape.reduce((n, d) => n * d, 1);
  const out = new Uint8Array(count * elementSize);
  if (count === 0) return out;
  const rank = shape.length;
  // Copy the innermost dimension in one go when its elements are adjacent.
  const innerRun = rank > 0 && strides[rank - 1] === 1 ? (shape[rank - 1] as number) : 1;
  const outerRank = innerRun > 1 ? rank - 1 : rank;
  const index = new Array<number>(outerRank).fill(0);
  const runBytes = innerRun * elementSize;
  for (let written = 0; written < out.byteLength; written += runBytes) {
    let element = offset;
    for (let d = 0; d < outerRank; d++) element += (index[d] as number) * (strides[d] as number);
    const start = element * elementSize;
    out.set(source.subarray(start, start + runBytes), written);
    for (let d = outerRank - 1; d >= 0; d--) {
      index[d] = (index[d] as number) + 1;
      if ((index[d] as number) < (shape[d] as number)) break;
      index[d] = 0;
    }
  }
  return out;
}

/** Reverses the bytes of every `width`-byte word, in place. */
export function swapBytes(bytes: Uint8Array, width: number): void {
  if (width <= 1) return;
  for (let i = 0; i + width <= bytes.byteLength; i += width) bytes.subarray(i, i + width).reverse();
}

export interface RebuildBudget {
  /** Bytes that may still be allocated to copy non-contiguous views. */
  remaining: number;
}

function integers(value: unknown, what: string): number[] {
  if (!Array.isArray(value) || !value.every((v) => Number.isSafeInteger(v) && v >= 0)) {
    throw new FormatError(
      `tensor ${what} must be a tuple of non-negative integers, got ${JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}` : v))}`,
    );
  }
  return value as number[];
}

export interface ViewRequest {
  storage: StorageRef;
  offset: unknown;
  size: unknown;
  stride: unknown;
  /** The tensor's dtype when it differs from the storage's (`_rebuild_tensor_v3` on an UntypedStorage). */
  dtype?: DType;
  requiresGrad?: boolean;
}

export interface ViewPlan {
  dtype: DType;
  /** ckpt's shape (F4 counts values, where torch counts bytes of two). */
  shape: number[];
  byteLength: number;
  elementSize: number;
  offset: number;
  size: number[];
  stride: number[];
  contiguous: boolean;
}

/** Checks a torch view against its storage: offsets, sizes and strides in range, no overflow. */
/** The most dimensions a tensor may have (numpy's and torch's limit). */
const MAX_DIMS = 64;

export function planView(request: ViewRequest, path?: string): ViewPlan {
  const { storage } = request;
  const dtype = request.dtype ?? storage.dtype;
  const fail = (message: string) => new FormatError(`tensor on storage ${storage.key}: ${message}`, { path });
  if (!dtype) throw fail('an untyped storage needs a dtype');
  if (!Number.isSafeInteger(request.offset) || (request.offset as number) < 0) {
    throw fail(`storage offset ${String(request.offset)} is not a non-negative integer`);
  }
  const offset = request.offset as number;
  // torch and numpy stop at 64 dimensions; a longer shape is hostile (and would cost quadratic time below).
  for (const dims of [request.size, request.stride]) {
    if (Array.isArray(dims) && dims.length > MAX_DIMS) throw fail(`${dims.length} dimensions, more than ${MAX_DIMS}`);
  }
  const size = integers(request.size, 'size');
  const stride = integers(request.stride, 'stride');
  if (size.length !== stride.length) throw fail(`size has ${size.length} dimensions but stride has ${stride.length}`);
  // float4_e2m1fn_x2 packs two F4 values a byte: torch counts bytes, safetensors and ckpt count values.
  const packed = dtype === 'F4';
  const elementSize = packed ? 1 : dtypeInfo(dtype).bits / 8;
  if (!Number.isInteger(elementSize))
    throw new UnsupportedError(`cannot read ${dtype} tensors from torch files`, { path });

  let count = 1n;
  let last = BigInt(offset);
  for (let d = 0; d < size.length; d++) {
    count *= BigInt(size[d] as number);
    if ((size[d] as number) > 0) last += BigInt((size[d] as number) - 1) * BigInt(stride[d] as number);
  }
  const storageElements = Math.floor(storage.byteLength / elementSize);
  if (count > 0n && last >= BigInt(storageElements)) {
    throw fail(`the view reaches element ${last}, past the ${storageElements} elements of its storage`);
  }
  if (count * BigInt(elementSize) > BigInt(Number.MAX_SAFE_INTEGER)) throw fail('the view is absurdly large');
  const byteLength = Number(count) * elementSize;
  const contiguous = size.every((d, i) => d <= 1 || stride[i] === size.slice(i + 1).reduce((n, x) => n * x, 1));
  const shape = packed
    ? size.length === 0
      ? [2]
      : [...size.slice(0, -1), (size[size.length - 1] as number) * 2]
    : size;
  return { dtype, shape, byteLength, elementSize, offset, size, stride, contiguous };
}

/** Builds the C-contiguous tensor a torch view describes. */
export function rebuildTensor(request: ViewRequest, budget: RebuildBudget, path?: string): Tensor {
  const plan = planView(request, path);
  const { storage } = request;
  let data: Uint8Array;
  if (plan.byteLength === 0) {
    data = new Uint8Array(0);
  } else if (plan.contiguous && !storage.bigEndian) {
    const start = plan.offset * plan.elementSize;
    data = storage.bytes.subarray(start, start + plan.byteLength);
  } else {
    if (plan.byteLength > budget.remaining) {
      throw new FormatError(
        `tensor on storage ${storage.key}: copying this non-contiguous view needs ${plan.byteLength} bytes, more than the ${budget.remaining} left of the copy budget (option maxCopyBytes)`,
        { path },
      );
    }
    budget.remaining -= plan.byteLength;
    data = gatherStrided(storage.bytes, plan.elementSize, plan.offset, plan.size, plan.stride);
    if (storage.bigEndian)
      swapBytes(data, dtypeInfo(plan.dtype).kind === 'complex' ? plan.elementSize / 2 : plan.elementSize);
  }
  const validated = tensor(plan.dtype, plan.shape, data);
  if (!request.requiresGrad) return validated;
  const { dtype, shape } = validated;
  return Object.freeze(withPython({ dtype, shape, data }, { requiresGrad: true }));
}
