/** torch's storage classes and dtypes, and how they map to ckpt dtypes. */
import type { DType } from '@ckpt/core';

/** Legacy typed storage classes (`torch.FloatStorage`, ...) and their element types. */
export const STORAGE_CLASS_DTYPE: Readonly<Record<string, DType>> = {
  DoubleStorage: 'F64',
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  ComplexFloatStorage: 'C64',
  ComplexDoubleStorage: 'C128',
};

/** The storage class torch writes for a dtype, when one exists (else UntypedStorage and `_rebuild_tensor_v3`). */
export const DTYPE_STORAGE_CLASS: Readonly<Partial<Record<DType, string>>> = Object.fromEntries(
  Object.entries(STORAGE_CLASS_DTYPE).map(([cls, dtype]) => [dtype, cls]),
);

/** torch dtype names (`torch.<name>`) and their ckpt dtypes; aliases included. */
export const TORCH_DTYPE: Readonly<Record<string, DType>> = {
  float64: 'F64',
  double: 'F64',
  float32: 'F32',
  float: 'F32',
  float16: 'F16',
  half: 'F16',
  bfloat16: 'BF16',
  complex64: 'C64',
  cfloat: 'C64',
  complex128: 'C128',
  cdouble: 'C128',
  int64: 'I64',
  long: 'I64',
  int32: 'I32',
  int: 'I32',
  int16: 'I16',
  short: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
  uint16: 'U16',
  uint32: 'U32',
  uint64: 'U64',
  float8_e4m3fn: 'F8_E4M3',
  float8_e5m2: 'F8_E5M2',
  float8_e4m3fnuz: 'F8_E4M3FNUZ',
  float8_e5m2fnuz: 'F8_E5M2FNUZ',
  float8_e8m0fnu: 'F8_E8M0',
  float4_e2m1fn_x2: 'F4',
};

/** Every torch dtype name torch may pickle, including those ckpt cannot hold (quantized, complex32, sub-byte ints). */
export const KNOWN_TORCH_DTYPES: ReadonlySet<string> = new Set([
  ...Object.keys(TORCH_DTYPE),
  'complex32',
  'chalf',
  'quint8',
  'qint8',
  'qint32',
  'quint4x2',
  'quint2x4',
  'bits1x8',
  'bits2x4',
  'bits4x2',
  'bits8',
  'bits16',
  ...[1, 2, 3, 4, 5, 6, 7].flatMap((n) => [`uint${n}`, `int${n}`]),
]);

/** The canonical torch name of a ckpt dtype (what `str(dtype)` gives, minus `torch.`). */
export const CANONICAL_TORCH_DTYPE: Readonly<Record<DType, string | undefined>> = {
  BOOL: 'bool',
  F4: 'float4_e2m1fn_x2',
  F6_E2M3: undefined,
  F6_E3M2: undefined,
  U8: 'uint8',
  I8: 'int8',
  F8_E5M2: 'float8_e5m2',
  F8_E4M3: 'float8_e4m3fn',
  F8_E8M0: 'float8_e8m0fnu',
  F8_E4M3FNUZ: 'float8_e4m3fnuz',
  F8_E5M2FNUZ: 'float8_e5m2fnuz',
  I16: 'int16',
  U16: 'uint16',
  F16: 'float16',
  BF16: 'bfloat16',
  I32: 'int32',
  U32: 'uint32',
  F32: 'float32',
  C64: 'complex64',
  F64: 'float64',
  I64: 'int64',
  U64: 'uint64',
  C128: 'complex128',
};
