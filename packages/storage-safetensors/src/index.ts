/**
 * @ckpt/storage-safetensors: safetensors files read and written exactly as the
 * reference implementation does, with zero-copy loading, nested training
 * state, tied weights and Hugging Face sharding.
 */
export { type SafetensorsBackend, type SafetensorsSaveOptions, safetensors } from './backend.js';
export { firstDuplicateKey, type HeaderEntry, MAX_HEADER_BYTES, type ParsedHeader, parseHeader } from './header.js';
export { readHeader, readHeaderInJavaScript, SafetensorsFile, type TensorEntry } from './reader.js';
export { INDEX_SUFFIX, parseSize, planShards, shardFileName } from './shards.js';
export { type Deduplicated, resolveSharedTensors, type TiedWeights } from './shared.js';
export { type FilePlan, planFile, SAFETENSORS_DTYPES, writeSafetensors } from './writer.js';
