/**
 * @ckpt/core: tensors and state trees, the storage contract and registry,
 * typed errors. It knows no file format, no database and no network.
 */
export { type ConvertOptions, type ConvertResult, convertCheckpoint } from './convert.js';
export {
  byteLengthOf,
  DTYPES,
  type DType,
  type DTypeInfo,
  type DTypeKind,
  dtypeInfo,
  elementBits,
  elementSize,
  isDType,
  shapeNumel,
  type TypedArrayName,
} from './dtype.js';
export {
  CkptError,
  type CkptErrorDetails,
  ConflictError,
  ErrorCode,
  FormatError,
  IntegrityError,
  InvalidArgumentError,
  isCkptError,
  NativeError,
  NativeErrorCode,
  NotFoundError,
  UnsupportedError,
} from './errors.js';
export {
  bf16ToF32,
  decodeFloat,
  type EncodedFloat,
  encodeFloat,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  isEncodedFloat,
} from './float.js';
export { StorageRegistry } from './registry.js';
export {
  DETECT_BYTES,
  type FileDigest,
  type Inspection,
  type Loaded,
  type LoadOptions,
  type SaveOptions,
  type SaveResult,
  type StorageBackend,
  type TensorInfo,
} from './storage.js';
export { type JsonValue, joinTree, type SplitTree, splitTree } from './structure.js';
export {
  type AnyTypedArray,
  copyTensor,
  fromNumbers,
  fromTypedArray,
  isTensor,
  nbytes,
  numel,
  type Tensor,
  tensor,
  tensorsEqual,
  toFloat32Array,
  toNumbers,
  toTypedArray,
  zeros,
} from './tensor.js';
export {
  assertStateTree,
  childrenOf,
  flattenTensors,
  forEachTensor,
  isFlatTensorRecord,
  isPlainObject,
  joinPath,
  keySegment,
  mapTensors,
  type StateKey,
  type StateObject,
  type StateTree,
  type StateValue,
  Tuple,
  unflatten,
} from './tree.js';
