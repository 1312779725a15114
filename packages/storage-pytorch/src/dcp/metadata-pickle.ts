/**
 * Writing a DCP `.metadata` file: the pickle of DCP's `Metadata` dataclass
 * that torch's FileSystemReader loads, built from opcodes the way Python's
 * pickler writes dataclasses (NEWOBJ, then BUILD with the fields).
 */
import type { DType } from '@ckpt/core';
import { Op } from '../pickle/opcodes.js';
import { CANONICAL_TORCH_DTYPE } from '../torch-types.js';
import type { DcpEntry, DcpStorageInfo } from './metadata.js';

const DCP = 'torch.distributed.checkpoint.metadata';

/** One stored item: a tensor chunk (offsets) or a bytes value (null). */
export interface PlannedItem {
  fqn: string;
  offsets: readonly number[] | null;
  storage: DcpStorageInfo;
}

class PickleWriter {
  readonly #parts: Uint8Array[] = [];
  readonly #memo = new Map<string, number>();
  byte(...codes: number[]) {
    this.#parts.push(Uint8Array.from(codes));
  }
  /** A global, written once and then fetched from the memo. */
  global(module: string, name: string) {
    const key = `${module}\n${name}\n`;
    const known = this.#memo.get(key);
    if (known !== undefined) return this.#get(known);
    this.byte(Op.GLOBAL);
    this.#parts.push(Buffer.from(key, 'utf8'));
    const index = this.#memo.size;
    this.#memo.set(key, index);
    this.byte(Op.LONG_BINPUT, ...u32(index));
  }
  #get(index: number) {
    this.byte(Op.LONG_BINGET, ...u32(index));
  }
  string(value: string) {
    const bytes = Buffer.from(value, 'utf8');
    this.byte(Op.BINUNICODE, ...u32(bytes.byteLength));
    this.#parts.push(bytes);
  }
  int(value: number) {
    if (value >= -(2 ** 31) && value < 2 ** 31) {
      const out = new Uint8Array(5);
      out[0] = Op.BININT;
      new DataView(out.buffer).setInt32(1, value, true);
      this.#parts.push(out);
      return;
    }
    const bytes = new Uint8Array(9);
    new DataView(bytes.buffer).setBigInt64(0, BigInt(value), true);
    this.byte(Op.LONG1, 8);
    this.#parts.push(bytes);
  }
  none() {
    this.byte(Op.NONE);
  }
  bool(value: boolean) {
    this.byte(value ? Op.NEWTRUE : Op.NEWFALSE);
  }
  tuple(write: () => void) {
    this.byte(Op.MARK);
    write();
    this.byte(Op.TUPLE);
  }
  /** `dict` with its items written in batches, as Python does. */
  dict<T>(items: readonly T[], writeItem: (item: T) => void) {
    this.byte(Op.EMPTY_DICT);
    for (let i = 0; i < items.length; i += 1000) {
      this.byte(Op.MARK);
      for (const item of items.slice(i, i + 1000)) writeItem(item);
      this.byte(Op.SETITEMS);
    }
  }
  list<T>(items: readonly T[], writeItem: (item: T) => void) {
    this.byte(Op.EMPTY_LIST);
    for (let i = 0; i < items.length; i += 1000) {
      this.byte(Op.MARK);
      for (const item of items.slice(i, i + 1000)) writeItem(item);
      this.byte(Op.APPENDS);
    }
  }
  /** `module.name(*args)`. */
  call(module: string, name: string, args: () => void) {
    this.global(module, name);
    this.tuple(args);
    this.byte(Op.REDUCE);
  }
  /** An instance of a dataclass: `cls.__new__(cls)`, then its state. */
  instance(module: string, name: string, state: () => void) {
    this.global(module, name);
    this.byte(Op.EMPTY_TUPLE, Op.NEWOBJ);
    state();
    this.byte(Op.BUILD);
  }
  /** A dataclass's fields as its state dict. */
  fields(entries: ReadonlyArray<readonly [string, () => void]>) {
    this.dict(entries, ([name, write]) => {
      this.string(name);
      write();
    });
  }
  result(): Uint8Array {
    return Buffer.concat([Uint8Array.from([Op.PROTO, 2]), ...this.#parts, Uint8Array.from([Op.STOP])]);
  }
}

function u32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
}

function size(out: PickleWriter, dims: readonly number[]) {
  out.call('torch', 'Size', () =>
    out.tuple(() => {
      for (const d of dims) out.int(d);
    }),
  );
}

function properties(out: PickleWriter, dtype: DType) {
  out.instance(DCP, 'TensorProperties', () =>
    out.tuple(() => {
      out.global('torch', CANONICAL_TORCH_DTYPE[dtype] ?? dtype);
      out.call('torch.serialization', '_get_layout', () => out.string('torch.strided'));
      out.bool(false); // requires_grad
      out.call(DCP, '_MEM_FORMAT_ENCODING', () => out.int(0)); // contiguous
      out.bool(false); // pin_memory
    }),
  );
}

function entry(out: PickleWriter, meta: DcpEntry) {
  if (meta.kind === 'bytes') {
    out.instance(DCP, 'BytesStorageMetadata', () => out.fields([]));
    return;
  }
  out.instance(DCP, 'TensorStorageMetadata', () =>
    out.fields([
      ['properties', () => properties(out, meta.dtype)],
      ['size', () => size(out, meta.shape)],
      [
        'chunks',
        () =>
          out.list(meta.chunks, (chunk) =>
            out.instance(DCP, 'ChunkStorageMetadata', () =>
              out.fields([
                ['offsets', () => size(out, chunk.offsets)],
                ['sizes', () => size(out, chunk.sizes)],
              ]),
            ),
          ),
      ],
    ]),
  );
}

/** The `.metadata` pickle for these entries, paths and items. */
export function pickleDcpMetadata(
  entries: ReadonlyMap<string, DcpEntry>,
  paths: ReadonlyMap<string, readonly (string | number)[]>,
  items: readonly PlannedItem[],
): Uint8Array {
  const out = new PickleWriter();
  out.instance(DCP, 'Metadata', () =>
    out.fields([
      [
        'state_dict_metadata',
        () =>
          out.dict([...entries], ([fqn, meta]) => {
            out.string(fqn);
            entry(out, meta);
          }),
      ],
      [
        'planner_data',
        () =>
          out.dict([...paths], ([fqn, path]) => {
            out.string(fqn);
            out.tuple(() => {
              for (const part of path) {
                if (typeof part === 'number') out.int(part);
                else out.string(part);
              }
            });
          }),
      ],
      [
        'storage_data',
        () =>
          out.dict(items, (item) => {
            out.instance(DCP, 'MetadataIndex', () =>
              out.fields([
                ['fqn', () => out.string(item.fqn)],
                ['offset', () => (item.offsets ? size(out, item.offsets) : out.none())],
                ['index', () => out.none()],
              ]),
            );
            out.instance('torch.distributed.checkpoint.filesystem', '_StorageInfo', () =>
              out.fields([
                ['relative_path', () => out.string(item.storage.file)],
                ['offset', () => out.int(item.storage.offset)],
                ['length', () => out.int(item.storage.length)],
              ]),
            );
          }),
      ],
      ['storage_meta', () => out.none()],
      ['version', () => out.string('1.0.0')],
    ]),
  );
  return out.result();
}
