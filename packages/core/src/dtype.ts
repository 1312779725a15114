import { InvalidArgumentError, shown, UnsupportedError } from './errors.js';

/**
 * Element types, named as safetensors names them, plus C128 (torch's
 * complex128, which safetensors lacks). F4 and the F6 types are sub-byte
 * and handled as opaque bytes.
 */
export const DTYPES = [
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
  'C128',
] as const;

export type DType = (typeof DTYPES)[number];

export type DTypeKind = 'bool' | 'uint' | 'int' | 'float' | 'complex';

/** The typed array that views a dtype's bytes (floats without a JS type view as their raw bits). */
export type TypedArrayName =
  | 'Uint8Array'
  | 'Int8Array'
  | 'Uint16Array'
  | 'Int16Array'
  | 'Uint32Array'
  | 'Int32Array'
  | 'Float32Array'
  | 'Float64Array'
  | 'BigInt64Array'
  | 'BigUint64Array';

export interface DTypeInfo {
  readonly dtype: DType;
  readonly bits: number;
  readonly kind: DTypeKind;
  /** The typed array for views, or undefined for sub-byte types. */
  readonly view: TypedArrayName | undefined;
  /** True when the view holds raw bits to decode (F16, BF16, F8), not values. */
  readonly encoded: boolean;
}

function info(
  dtype: DType,
  bits: number,
  kind: DTypeKind,
  view: TypedArrayName | undefined,
  encoded = false,
): DTypeInfo {
  return Object.freeze({ dtype, bits, kind, view, encoded });
}

const INFO: Readonly<Record<DType, DTypeInfo>> = {
  BOOL: info('BOOL', 8, 'bool', 'Uint8Array'),
  F4: info('F4', 4, 'float', undefined, true),
  F6_E2M3: info('F6_E2M3', 6, 'float', undefined, true),
  F6_E3M2: info('F6_E3M2', 6, 'float', undefined, true),
  U8: info('U8', 8, 'uint', 'Uint8Array'),
  I8: info('I8', 8, 'int', 'Int8Array'),
  F8_E5M2: info('F8_E5M2', 8, 'float', 'Uint8Array', true),
  F8_E4M3: info('F8_E4M3', 8, 'float', 'Uint8Array', true),
  F8_E8M0: info('F8_E8M0', 8, 'float', 'Uint8Array', true),
  F8_E4M3FNUZ: info('F8_E4M3FNUZ', 8, 'float', 'Uint8Array', true),
  F8_E5M2FNUZ: info('F8_E5M2FNUZ', 8, 'float', 'Uint8Array', true),
  I16: info('I16', 16, 'int', 'Int16Array'),
  U16: info('U16', 16, 'uint', 'Uint16Array'),
  F16: info('F16', 16, 'float', 'Uint16Array', true),
  BF16: info('BF16', 16, 'float', 'Uint16Array', true),
  I32: info('I32', 32, 'int', 'Int32Array'),
  U32: info('U32', 32, 'uint', 'Uint32Array'),
  F32: info('F32', 32, 'float', 'Float32Array'),
  C64: info('C64', 64, 'complex', 'Float32Array'),
  F64: info('F64', 64, 'float', 'Float64Array'),
  I64: info('I64', 64, 'int', 'BigInt64Array'),
  U64: info('U64', 64, 'uint', 'BigUint64Array'),
  C128: info('C128', 128, 'complex', 'Float64Array'),
};

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.hasOwn(INFO, value);
}

export function dtypeInfo(dtype: DType): DTypeInfo {
  const found = isDType(dtype) ? INFO[dtype] : undefined;
  if (!found) {
    throw new InvalidArgumentError(`unknown dtype ${JSON.stringify(dtype)}`, {
      expected: `one of ${DTYPES.join(', ')}`,
      found: shown(dtype),
    });
  }
  return found;
}

/** Bits per element (4 and 6 for the sub-byte types). */
export function elementBits(dtype: DType): number {
  return dtypeInfo(dtype).bits;
}

/** Bytes per element; throws for sub-byte types, whose elements do not fill whole bytes. */
export function elementSize(dtype: DType): number {
  const { bits } = dtypeInfo(dtype);
  if (bits % 8 !== 0) throw new UnsupportedError(`${dtype} elements are ${bits} bits: they have no byte size`);
  return bits / 8;
}

/** Number of elements of a shape, checked to stay an exact JavaScript integer. */
export function shapeNumel(shape: readonly number[]): number {
  let n = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new InvalidArgumentError(`shape dimensions must be non-negative integers, got [${shape.join(', ')}]`);
    }
    n *= dim;
    if (!Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`shape [${shape.join(', ')}] has more elements than 2^53`);
    }
  }
  return n;
}

/** Bytes that `shape` elements of `dtype` take; sub-byte types must fill whole bytes. */
export function byteLengthOf(dtype: DType, shape: readonly number[]): number {
  const bits = shapeNumel(shape) * elementBits(dtype);
  if (!Number.isSafeInteger(bits)) {
    throw new InvalidArgumentError(`shape [${shape.join(', ')}] of ${dtype} has more bits than 2^53`);
  }
  if (bits % 8 !== 0) {
    throw new InvalidArgumentError(
      `${shapeNumel(shape)} elements of ${dtype} take ${bits} bits, which is not a whole number of bytes`,
    );
  }
  return bits / 8;
}
