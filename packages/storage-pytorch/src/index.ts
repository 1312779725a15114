/**
 * @ckpt/storage-pytorch: torch.save files (.pt, .pth, .bin, Lightning .ckpt),
 * read through an allow-list unpickler that runs nothing, with zero-copy
 * tensors, and written so that torch.load(weights_only=True) accepts them.
 */
export { type AllowListOptions, GLOBAL_PRESETS } from './allow-list.js';
export { BIN_INDEX_SUFFIX, type PytorchBackend, pytorch, type TorchLoadOptions } from './backend.js';
export { type DcpBackend, dcp } from './dcp/backend.js';
export type { DcpChunk, DcpEntry, DcpMetadata, DcpStorageInfo, DcpTensorEntry } from './dcp/metadata.js';
export { type DcpCheckpoint, openDcp } from './dcp/read.js';
export { type DcpSaveOptions, type DcpSaveResult, DcpShard, saveDcp } from './dcp/write.js';
export { type UnpicklerHooks, UnsafePickleError, unpickle } from './pickle/unpickler.js';
export {
  asParameter,
  isParameter,
  PYTHON,
  PyFloat,
  type PythonInfo,
  pyFloat,
  pythonInfo,
  requiresGrad,
  torchDevice,
  torchDtype,
  withPython,
} from './pickle/values.js';
export { readTorch, TensorStub, type TorchFile, type TorchReadOptions } from './read.js';
export { METADATA_RECORD, SAVE_DTYPES, saveTorch, type TorchSaveOptions } from './write.js';
