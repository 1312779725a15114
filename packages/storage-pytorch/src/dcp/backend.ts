/**
 * torch.distributed.checkpoint folders as a storage backend, so that
 * `convertCheckpoint` and the CLI read and write them: the path is the
 * folder or its `.metadata` file.
 */
import { join } from 'node:path';
import {
  dtypeInfo,
  type Inspection,
  type Loaded,
  numel,
  type SaveResult,
  type StateTree,
  type StorageBackend,
  type TensorInfo,
} from '@ckpt/core';
import type { TorchReadOptions } from '../read.js';
import { SAVE_DTYPES } from '../write.js';
import { METADATA_FILE } from './metadata.js';
import { dcpFolder, openDcp } from './read.js';
import { saveDcp } from './write.js';

const MARKER = Buffer.from('torch.distributed.checkpoint.metadata');

async function load(path: string, options: TorchReadOptions = {}): Promise<Loaded> {
  const checkpoint = openDcp(dcpFolder(path), options);
  try {
    // Views of the mapped files only where each tensor is stored whole, as one chunk.
    const whole = [...checkpoint.metadata.entries.values()].every((e) => e.kind === 'bytes' || e.chunks.length === 1);
    return { state: checkpoint.load(), metadata: {}, format: 'dcp', zeroCopy: whole && !options.copy };
  } finally {
    checkpoint.close();
  }
}

/** Writes a one-process DCP checkpoint into the folder. */
async function save(path: string, state: StateTree): Promise<SaveResult> {
  const folder = dcpFolder(path);
  const { file } = await saveDcp(folder, state);
  return { ...file, files: [file] };
}

async function inspect(path: string, options: TorchReadOptions = {}): Promise<Inspection> {
  const checkpoint = openDcp(dcpFolder(path), options);
  try {
    const tensors: TensorInfo[] = [];
    for (const [name, entry] of checkpoint.metadata.entries) {
      if (entry.kind !== 'tensor') continue;
      const bytes = (numel(entry.shape) * dtypeInfo(entry.dtype).bits) / 8;
      tensors.push({ name, dtype: entry.dtype, shape: [...entry.shape], byteLength: bytes });
    }
    const files = [...new Set([...checkpoint.metadata.storage.values()].map((s) => join(checkpoint.path, s.file)))];
    return {
      format: 'dcp',
      path,
      files: [join(checkpoint.path, METADATA_FILE), ...files],
      tensors,
      parameterCount: tensors.reduce((sum, t) => sum + numel(t.shape), 0),
      tensorBytes: tensors.reduce((sum, t) => sum + t.byteLength, 0),
      metadata: {},
    };
  } finally {
    checkpoint.close();
  }
}

/** A pickle (protocol 2 or later) that names DCP's metadata module near its start. */
function detect(header: Uint8Array): boolean {
  return header[0] === 0x80 && Buffer.from(header).includes(MARKER);
}

export interface DcpBackend extends StorageBackend {
  load(path: string, options?: TorchReadOptions): Promise<Loaded>;
  inspect(path: string, options?: TorchReadOptions): Promise<Inspection>;
}

/** torch.distributed.checkpoint folders (`.metadata` + `__<rank>_<n>.distcp`). */
export const dcp: DcpBackend = Object.freeze({
  name: 'dcp',
  extensions: [METADATA_FILE],
  folderMarker: METADATA_FILE,
  dtypes: SAVE_DTYPES.filter((d) => d !== 'F4'),
  detect,
  save,
  load,
  inspect,
});
