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
  ClosedError,
  ConflictError,
  DatabaseError,
  ErrorCode,
  FormatError,
  HookError,
  IntegrityError,
  InvalidArgumentError,
  isCkptError,
  LimitError,
  NativeError,
  NativeErrorCode,
  NetworkError,
  NotFoundError,
  nativeError,
  ProgramError,
  shown,
  TrackerError,
  UnsupportedError,
  VetoedError,
} from './errors.js';
export * from './events.js';
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
export { LIMIT_VARIABLES, LIMITS, limitExceeded } from './limits.js';
export { type Comparison, compareTensors, type TensorDifference } from './manager/compare.js';
export { readablePath, writablePath } from './manager/confine.js';
export { managerOptions } from './manager/from-settings.js';
export {
  compactStamp,
  dashStamp,
  epochStepLayout,
  type FileNameContext,
  type FolderContext,
  formatSpec,
  type Layout,
  layouts,
  pythonIsoformat,
  type Seed001Options,
  seed000Layout,
  seed000Path,
  seed001Layout,
  seed001RunName,
  seed003Layout,
  templateLayout,
} from './manager/layouts/index.js';
export {
  type MinimalLogging,
  Seed001Files,
  type Seed001RunInfo,
  type TrainingMetadata,
} from './manager/layouts/seed001.js';
export {
  CheckpointManager,
  type ExportResult,
  type ListFilter,
  type LoadedCheckpoint,
  type LoadOptions as ManagerLoadOptions,
  type SaveCompletion,
  type SaveInput,
  type SaveOutcome,
  type Summary,
  type VerifyResult,
} from './manager/manager.js';
export type { CheckpointManagerOptions } from './manager/options.js';
export {
  allOf,
  anyOf,
  bestOnly,
  everyEpochs,
  everySeconds,
  everySteps,
  keepBest,
  keepEvery,
  keepIfAll,
  keepIfAny,
  keepLatest,
  keepOnePer,
  keepTagged,
  type RetentionContext,
  type RetentionPolicy,
  type SaveDecisionContext,
  type SavePolicy,
  when,
} from './manager/policies.js';
export { type BestSetting, monitorScore, type Score, type Selector } from './manager/ranking.js';
export type {
  BackupInfo,
  CheckpointRecord,
  CheckpointStatus,
  IndexFile,
  StoredFile,
  StoredRecord,
} from './manager/record.js';
export type { RecoveryReport } from './manager/recovery.js';
export { type SnapshotMode, snapshotState } from './manager/snapshot.js';
export type { Progress, ProgressCallback } from './progress.js';
export { StorageRegistry } from './registry.js';
export {
  type BucketSettings,
  CONFIG_NAMES,
  type Credentials,
  checkSetting,
  type LoadSettingsOptions,
  loadCredentials,
  loadSettings,
  type ResolverSettings,
  readResolverFile,
  readSettingsFile,
  SETTINGS,
  type SettingKey,
  type SettingRow,
  type Settings,
  type SettingValues,
} from './settings/index.js';
export {
  formatShardIndex,
  inParallel,
  isShardOf,
  parseShardIndex,
  planShards,
  type ShardIndex,
  shardFileName,
} from './shards.js';
export { parseSize } from './size.js';
export {
  DETECT_BYTES,
  type EncodedFile,
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
export type { ExperimentInfo, Tracker } from './tracker.js';
export * from './tracking/index.js';
export {
  assertStateTree,
  bareRecord,
  childrenOf,
  collectLeaves,
  flattenTensors,
  forEachTensor,
  getEntry,
  isFlatTensorRecord,
  isPlainObject,
  joinPath,
  keySegment,
  mapTensors,
  type StateKey,
  type StateObject,
  type StateTree,
  type StateValue,
  setEntry,
  Tuple,
  unflatten,
} from './tree.js';
