/**
 * Saving a state tree as a torch.save zip archive that `torch.load(...,
 * weights_only=True)` and `torch.load(..., mmap=True)` accept, written
 * atomically with its SHA-256 from the same pass.
 */
import { randomInt } from 'node:crypto';
import { basename, extname } from 'node:path';
import {
  childrenOf,
  DTYPES,
  type DType,
  dtypeInfo,
  InvalidArgumentError,
  isPlainObject,
  isTensor,
  type SaveOptions,
  type SaveResult,
  type StateTree,
  type StateValue,
  type Tensor,
} from '@ckpt/core';
import { crc32Many, writeFileAtomic } from '@ckpt/native';
import { type PlannedStorage, pickleState, type StorageSlot } from './pickle/pickler.js';
import { type ZipRecord, zipChunks } from './zip/writer.js';

/** Every dtype torch has (all of ckpt's but the F6 types). */
export const SAVE_DTYPES: readonly DType[] = DTYPES.filter((d) => !d.startsWith('F6_'));

/** ckpt keeps a save's metadata in this record, which torch ignores. */
export const METADATA_RECORD = '.data/ckpt_metadata.json';

export interface TorchSaveOptions extends SaveOptions {}

/**
 * Decides which storage each tensor goes into. Tensors over the same memory
 * (tied weights, views of one buffer) share one storage, as in torch; when
 * overlapping tensors disagree on the element type, each gets its own copy.
 */
export function planStorages(tensors: Iterable<Tensor>): (t: Tensor) => StorageSlot {
  const slots = new Map<Tensor, StorageSlot>();
  const byBuffer = new Map<ArrayBufferLike, Tensor[]>();
  for (const t of new Set(tensors)) {
    if (t.data.byteLength === 0) {
      slots.set(t, { storage: { dtype: t.dtype, bytes: t.data }, offset: 0 });
      continue;
    }
    const list = byBuffer.get(t.data.buffer) ?? [];
    list.push(t);
    byBuffer.set(t.data.buffer, list);
  }
  for (const list of byBuffer.values()) {
    list.sort((a, b) => a.data.byteOffset - b.data.byteOffset);
    let group: Tensor[] = [];
    let end = -1;
    const close = () => {
      if (group.length === 0) return;
      const start = (group[0] as Tensor).data.byteOffset;
      const dtype = (group[0] as Tensor).dtype;
      const size = dtype === 'F4' ? 1 : dtypeInfo(dtype).bits / 8;
      const shareable = group.every((t) => t.dtype === dtype && (t.data.byteOffset - start) % size === 0);
      if (shareable) {
        const first = group[0] as Tensor;
        const storage: PlannedStorage = { dtype, bytes: new Uint8Array(first.data.buffer, start, end - start) };
        for (const t of group) slots.set(t, { storage, offset: (t.data.byteOffset - start) / size });
      } else {
        for (const t of group) slots.set(t, { storage: { dtype: t.dtype, bytes: t.data }, offset: 0 });
      }
      group = [];
    };
    for (const t of list) {
      if (t.data.byteOffset >= end) {
        close();
        end = t.data.byteOffset;
      }
      group.push(t);
      end = Math.max(end, t.data.byteOffset + t.data.byteLength);
    }
    close();
  }
  return (t) => {
    const slot = slots.get(t);
    if (!slot) throw new InvalidArgumentError('a tensor was not planned into a storage');
    return slot;
  };
}

function collectTensors(value: StateValue, out: Tensor[] = [], seen = new Set<object>()): Tensor[] {
  if (isTensor(value)) {
    out.push(value);
    return out;
  }
  if (typeof value !== 'object' || value === null || seen.has(value)) return out;
  seen.add(value);
  for (const [, child] of childrenOf(value) ?? []) collectTensors(child, out, seen);
  return out;
}

/** torch names the archive's folder after the file, without its extension. */
function archiveFolder(path: string): string {
  const stem = basename(path, extname(path));
  return stem === '' || stem.includes('/') ? 'archive' : stem;
}

/** The records of a torch.save archive of `value` (a state dict, or a lone tensor as DCP saves them). */
export function torchArchive(value: StateValue, folder: string): ZipRecord[] {
  const slotOf = planStorages(collectTensors(value));
  const { pickle, storages } = pickleState(value, slotOf);
  return [
    { name: `${folder}/data.pkl`, data: pickle },
    { name: `${folder}/.format_version`, data: text('1') },
    { name: `${folder}/.storage_alignment`, data: text('64') },
    { name: `${folder}/byteorder`, data: text('little') },
    ...storages.map((s) => ({ name: `${folder}/data/${s.key}`, data: s.bytes })),
    { name: `${folder}/version`, data: text('3\n') },
    { name: `${folder}/.data/serialization_id`, data: text(Array.from({ length: 40 }, () => randomInt(10)).join('')) },
  ];
}

const text = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

export async function saveTorch(path: string, state: StateTree, options: TorchSaveOptions = {}): Promise<SaveResult> {
  if (!isPlainObject(state)) {
    throw new InvalidArgumentError('state must be a plain object at the top', {
      found: Object.prototype.toString.call(state),
    });
  }
  const folder = archiveFolder(path);
  const records = torchArchive(state, folder);
  if (options.metadata && Object.keys(options.metadata).length > 0) {
    for (const [k, v] of Object.entries(options.metadata)) {
      if (typeof v !== 'string')
        throw new InvalidArgumentError(`metadata values must be strings; ${JSON.stringify(k)} is not`);
    }
    records.push({ name: `${folder}/${METADATA_RECORD}`, data: text(JSON.stringify(options.metadata)) });
  }
  const crcs = await crc32Many(records.map((r) => r.data));
  const written = await writeFileAtomic(path, zipChunks(records, crcs), {
    fsync: options.fsync ?? true,
    onProgress: options.onProgress,
  });
  const file = { path, size: written.size, sha256: written.sha256 };
  return { ...file, files: [file] };
}
