import { byteLengthOf, type DType, dtypeInfo, isDType, shapeNumel, type TypedArrayName } from './dtype.js';
import { InvalidArgumentError, UnsupportedError } from './errors.js';
import { decodeFloat, encodeFloat, isEncodedFloat } from './float.js';

/**
 * A tensor: its element type, its shape, and its bytes, C-contiguous and
 * little-endian. `data` is usually a zero-copy view of a mapped file.
 */
export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

export type AnyTypedArray =
  | Uint8Array
  | Uint8ClampedArray
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

// Typed arrays use the platform's byte order; ckpt's bytes are little-endian.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new UnsupportedError('ckpt needs a little-endian platform');
}

/** Makes a tensor, checking that `data` holds exactly the bytes `dtype` and `shape` call for. */
export function tensor(dtype: DType, shape: readonly number[], data: Uint8Array): Tensor {
  if (!isDType(dtype)) dtypeInfo(dtype); // throws with the list of dtypes
  if (!(data instanceof Uint8Array)) {
    throw new InvalidArgumentError('tensor data must be a Uint8Array of little-endian bytes', {
      found: Object.prototype.toString.call(data),
    });
  }
  const expected = byteLengthOf(dtype, shape);
  if (data.byteLength !== expected) {
    throw new InvalidArgumentError(`a ${dtype} tensor of shape [${shape.join(', ')}] needs ${expected} bytes`, {
      expected: `${expected} bytes`,
      found: `${data.byteLength} bytes`,
    });
  }
  return Object.freeze({ dtype, shape: Object.freeze([...shape]), data });
}

/** True for anything shaped like a Tensor. */
export function isTensor(value: unknown): value is Tensor {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Tensor>;
  return isDType(candidate.dtype) && Array.isArray(candidate.shape) && candidate.data instanceof Uint8Array;
}

export function numel(tensorOrShape: Tensor | readonly number[]): number {
  return shapeNumel(Array.isArray(tensorOrShape) ? tensorOrShape : (tensorOrShape as Tensor).shape);
}

export function nbytes(t: Tensor): number {
  return t.data.byteLength;
}

const TYPED_ARRAYS: Record<
  TypedArrayName,
  { new (buffer: ArrayBufferLike, offset: number, length: number): AnyTypedArray; BYTES_PER_ELEMENT: number }
> = {
  Uint8Array,
  Int8Array,
  Uint16Array,
  Int16Array,
  Uint32Array,
  Int32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

const DTYPE_OF_ARRAY = new Map<unknown, DType>([
  [Uint8Array, 'U8'],
  [Uint8ClampedArray, 'U8'],
  [Int8Array, 'I8'],
  [Uint16Array, 'U16'],
  [Int16Array, 'I16'],
  [Uint32Array, 'U32'],
  [Int32Array, 'I32'],
  [Float32Array, 'F32'],
  [Float64Array, 'F64'],
  [BigInt64Array, 'I64'],
  [BigUint64Array, 'U64'],
]);

/**
 * A tensor over a typed array's bytes, without copying. The dtype follows the
 * array type (Float32Array is F32, BigInt64Array I64, ...); pass `dtype` to
 * reinterpret, e.g. a Uint16Array of raw BF16 bits as 'BF16'.
 */
export function fromTypedArray(array: AnyTypedArray, shape?: readonly number[], dtype?: DType): Tensor {
  // A Node Buffer is a Uint8Array subclass.
  const natural = DTYPE_OF_ARRAY.get(array.constructor) ?? (array instanceof Uint8Array ? 'U8' : undefined);
  if (!natural) throw new InvalidArgumentError(`not a typed array: ${Object.prototype.toString.call(array)}`);
  const chosen = dtype ?? natural;
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  const elementsPerValue = dtypeInfo(chosen).kind === 'complex' ? 2 : 1;
  return tensor(chosen, shape ?? [array.length / elementsPerValue], bytes);
}

/**
 * The typed array over a tensor's bytes: Float32Array for F32, BigInt64Array
 * for I64, interleaved real/imaginary Float32Array for C64, raw bits
 * (Uint16Array, Uint8Array) for F16, BF16 and F8. A view when the bytes are
 * aligned for the element size, else an aligned copy. Sub-byte types have none.
 */
export function toTypedArray(t: Tensor): AnyTypedArray {
  const { view } = dtypeInfo(t.dtype);
  if (!view) throw new UnsupportedError(`${t.dtype} has no typed-array view: its elements are smaller than a byte`);
  const Type = TYPED_ARRAYS[view];
  const size = Type.BYTES_PER_ELEMENT;
  const data = t.data.byteOffset % size === 0 ? t.data : t.data.slice();
  return new Type(data.buffer, data.byteOffset, data.byteLength / size);
}

/** Every element as a number (complex: interleaved parts); 64-bit integers lose precision past 2^53. */
export function toFloat32Array(t: Tensor): Float32Array {
  return Float32Array.from(toNumbers(t));
}

/** Every element as a JavaScript number (complex: interleaved parts). */
export function toNumbers(t: Tensor): number[] {
  if (isEncodedFloat(t.dtype)) {
    const dtype = t.dtype;
    return Array.from(toTypedArray(t) as Uint8Array | Uint16Array, (bits) => decodeFloat(dtype, bits));
  }
  const values = toTypedArray(t);
  return Array.from(values as ArrayLike<number | bigint>, Number);
}

/**
 * A tensor of `dtype` from numbers: floats are rounded to the dtype (ties to
 * even, as torch does), integers must fit. For F16, BF16 and F8 this is the
 * float32-to-narrow-float conversion.
 */
export function fromNumbers(dtype: DType, values: ArrayLike<number>, shape?: readonly number[]): Tensor {
  const finalShape = shape ?? [values.length / (dtypeInfo(dtype).kind === 'complex' ? 2 : 1)];
  const bytes = new Uint8Array(byteLengthOf(dtype, finalShape));
  if (isEncodedFloat(dtype)) {
    const bits = dtype === 'F16' || dtype === 'BF16' ? new Uint16Array(bytes.buffer) : bytes;
    for (let i = 0; i < values.length; i++) bits[i] = encodeFloat(dtype, values[i] as number);
    return tensor(dtype, finalShape, bytes);
  }
  const target = toTypedArray(tensor(dtype, finalShape, bytes));
  if (target.length !== values.length) {
    throw new InvalidArgumentError(
      `shape [${finalShape.join(', ')}] holds ${target.length} values, got ${values.length}`,
    );
  }
  if (target instanceof BigInt64Array || target instanceof BigUint64Array) {
    for (let i = 0; i < values.length; i++) target[i] = BigInt(values[i] as number);
  } else {
    (target as Float64Array).set(values);
  }
  return tensor(dtype, finalShape, bytes);
}

/** A tensor of zeros. */
export function zeros(dtype: DType, shape: readonly number[]): Tensor {
  return tensor(dtype, shape, new Uint8Array(byteLengthOf(dtype, shape)));
}

/** A tensor whose bytes are a fresh copy, independent of any file or buffer. */
export function copyTensor(t: Tensor): Tensor {
  return tensor(t.dtype, t.shape, t.data.slice());
}

/** True when both have the same dtype, shape and bytes. */
export function tensorsEqual(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length) return false;
  if (a.shape.some((d, i) => d !== b.shape[i])) return false;
  return Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(
    Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength),
  );
}
