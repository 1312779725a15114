/**
 * Reading torch.distributed.checkpoint (DCP) folders: `.metadata` plus
 * `__<rank>_<n>.distcp` files whose items are torch.save archives at byte
 * ranges. Tensors are assembled from their chunks for any region (the
 * whole tensor, or one rank's slice under a new sharding); a tensor stored
 * as one chunk is a view of the mapped file.
 */
import { closeSync, constants as fs, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import {
  dtypeInfo,
  FormatError,
  InvalidArgumentError,
  isTensor,
  NotFoundError,
  type StateTree,
  type StateValue,
  type Tensor,
  tensor,
  UnsupportedError,
} from '@ckpt/core';
import { fromNodeError, type MappedFile, mapFile } from '@ckpt/native';
import { readTorchFrom, type TorchReadOptions } from '../read.js';
import { checkDisjoint, copyBox, intersect, volume } from './boxes.js';
import {
  type DcpChunk,
  type DcpEntry,
  type DcpMetadata,
  type DcpTensorEntry,
  itemKey,
  METADATA_FILE,
  parseDcpMetadata,
} from './metadata.js';
import { nestByPaths } from './nest.js';

/** The largest `.metadata` file read (it is parsed in memory). */
const MAX_METADATA_BYTES = 1 << 30;

export interface DcpCheckpoint {
  readonly path: string;
  readonly metadata: DcpMetadata;
  /** The flattened keys, in the order DCP wrote them. */
  keys(): string[];
  /** A tensor, or the box `region` of it, assembled from the chunks that hold it. */
  tensor(fqn: string, region?: DcpChunk): Tensor;
  /** A value DCP stored as bytes (anything but a tensor), read through the allow-list. */
  value(fqn: string): StateValue;
  /** Every entry: nested as it was saved, or with flattened keys (`flat`). */
  load(options?: { flat?: boolean }): StateTree;
  close(): void;
}

/** The `.metadata` file's bytes: a regular file inside `folder`, never through a link. */
function readMetadataFile(folder: string): Uint8Array {
  const path = join(folder, METADATA_FILE);
  let fd: number;
  try {
    fd = openSync(path, fs.O_RDONLY | fs.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new NotFoundError(`${folder} is not a torch.distributed.checkpoint folder: it has no ${METADATA_FILE}`, {
        path: folder,
      });
    if (code === 'ELOOP') throw new FormatError(`${METADATA_FILE} is a symbolic link: refused`, { path });
    throw fromNodeError(error, path, 'open');
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new FormatError(`${METADATA_FILE} is not a regular file`, { path });
    if (stats.size > MAX_METADATA_BYTES)
      throw new FormatError(`${METADATA_FILE} is ${stats.size} bytes: too large for DCP metadata`, { path });
    const bytes = new Uint8Array(stats.size);
    let done = 0;
    while (done < bytes.byteLength) {
      const n = readSync(fd, bytes, done, bytes.byteLength - done, done);
      if (n === 0) throw new FormatError(`${METADATA_FILE} ended early`, { path });
      done += n;
    }
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/** The checkpoint folder a location names: the folder itself, or the folder of its `.metadata` file. */
export function dcpFolder(location: string): string {
  if (location === METADATA_FILE) return '.';
  return location.endsWith(`/${METADATA_FILE}`) ? location.slice(0, -METADATA_FILE.length - 1) : location;
}

/** Opens a DCP checkpoint folder (or its `.metadata` file). Nothing in it is run. */
export function openDcp(location: string, options: TorchReadOptions = {}): DcpCheckpoint {
  const folder = dcpFolder(location);
  const metadata = parseDcpMetadata(readMetadataFile(folder), join(folder, METADATA_FILE));
  const files = new Map<string, MappedFile>();
  const checked = new Set<string>();

  const mapped = (name: string): MappedFile => {
    const known = files.get(name);
    if (known) return known;
    const path = join(folder, name);
    let stats: ReturnType<typeof lstatSync>;
    try {
      stats = lstatSync(path);
    } catch (error) {
      throw fromNodeError(error, path, 'open');
    }
    if (!stats.isFile())
      throw new FormatError(`${name} is not a regular file in the checkpoint folder (a link or a folder)`, { path });
    const file = mapFile(path, { copy: options.copy ?? false });
    files.set(name, file);
    return file;
  };

  /** The value of one item, read from its byte range as a torch.save archive. */
  const item = (fqn: string, offsets: readonly number[] | null): StateValue => {
    const info = metadata.storage.get(itemKey(fqn, offsets));
    if (!info)
      throw new FormatError(
        `${fqn}: the metadata has no storage for ${offsets ? `the chunk at [${offsets.join(', ')}]` : 'its bytes'}`,
        { path: folder },
      );
    const file = mapped(info.file);
    if (info.offset + info.length > file.size)
      throw new FormatError(`${fqn}: its bytes run past the end of ${info.file} (${file.size} bytes)`, {
        path: file.path,
      });
    const source = {
      path: `${file.path}[${info.offset}..${info.offset + info.length}]`,
      size: info.length,
      zeroCopy: file.zeroCopy,
      read: (offset: number, length: number) => file.view(info.offset + offset, length),
    };
    return readTorchFrom(source, options).value;
  };

  const entry = (fqn: string): DcpEntry => {
    const found = metadata.entries.get(fqn);
    if (!found) throw new NotFoundError(`${fqn} is not in this DCP checkpoint`, { path: folder, found: fqn });
    return found;
  };

  const chunkTensor = (fqn: string, meta: DcpTensorEntry, chunk: DcpChunk): Tensor => {
    const value = item(fqn, chunk.offsets);
    if (!isTensor(value)) throw new FormatError(`${fqn}: a chunk's item is not a tensor`, { path: folder });
    if (value.dtype !== meta.dtype || value.shape.join() !== chunk.sizes.join())
      throw new FormatError(
        `${fqn}: a chunk holds ${value.dtype} [${value.shape.join(', ')}], the metadata says ${meta.dtype} [${chunk.sizes.join(', ')}]`,
        { path: folder },
      );
    return value;
  };

  const readTensor = (fqn: string, region?: DcpChunk): Tensor => {
    const meta = entry(fqn);
    if (meta.kind !== 'tensor') throw new InvalidArgumentError(`${fqn} is not a tensor but a stored value`);
    const box = region ?? { offsets: meta.shape.map(() => 0), sizes: meta.shape };
    checkRegion(fqn, meta, box);
    if (!checked.has(fqn)) {
      checkDisjoint(fqn, meta.chunks, folder);
      checked.add(fqn);
    }
    const { bits } = dtypeInfo(meta.dtype);
    if (bits % 8 !== 0) throw new UnsupportedError(`${fqn}: DCP tensors of ${meta.dtype} cannot be assembled`);
    const elementSize = bits / 8;
    const pieces = meta.chunks.flatMap((chunk) => {
      const overlap = intersect(chunk, box);
      return overlap ? [{ chunk, overlap }] : [];
    });
    const only = pieces[0];
    if (pieces.length === 1 && only && sameBox(only.chunk, box)) return chunkTensor(fqn, meta, only.chunk);
    const wanted = volume(box.sizes);
    const covered = pieces.reduce((sum, p) => sum + volume(p.overlap.sizes), 0);
    if (covered !== wanted)
      throw new FormatError(
        `${fqn}: the chunks cover ${covered} of the ${wanted} elements asked for: parts of the tensor are missing`,
        { path: folder },
      );
    const out = new Uint8Array(wanted * elementSize);
    for (const { chunk, overlap } of pieces) {
      copyBox(chunkTensor(fqn, meta, chunk).data, chunk, out, box, overlap, elementSize);
    }
    return tensor(meta.dtype, box.sizes, out);
  };

  const value = (fqn: string): StateValue => {
    if (entry(fqn).kind !== 'bytes') throw new InvalidArgumentError(`${fqn} is a tensor: read it with tensor()`);
    return item(fqn, null);
  };

  return {
    path: folder,
    metadata,
    keys: () => [...metadata.entries.keys()],
    tensor: readTensor,
    value,
    load(loadOptions = {}) {
      const flat: Array<[string, StateValue]> = [];
      for (const [fqn, meta] of metadata.entries)
        flat.push([fqn, meta.kind === 'tensor' ? readTensor(fqn) : value(fqn)]);
      return loadOptions.flat ? flatObject(flat) : nestByPaths(flat, metadata.paths, folder);
    },
    close() {
      for (const file of files.values()) file.close();
      files.clear();
    },
  };
}

function sameBox(a: DcpChunk, b: DcpChunk): boolean {
  return a.offsets.join() === b.offsets.join() && a.sizes.join() === b.sizes.join();
}

function checkRegion(fqn: string, meta: DcpTensorEntry, region: DcpChunk): void {
  const fits =
    region.offsets.length === meta.shape.length &&
    region.sizes.length === meta.shape.length &&
    region.offsets.every(
      (o, d) =>
        Number.isSafeInteger(o) &&
        o >= 0 &&
        Number.isSafeInteger(region.sizes[d]) &&
        (region.sizes[d] as number) >= 0 &&
        o + (region.sizes[d] as number) <= (meta.shape[d] as number),
    );
  if (!fits)
    throw new InvalidArgumentError(
      `${fqn}: the region at [${region.offsets.join(', ')}] of [${region.sizes.join(', ')}] is not inside its shape [${meta.shape.join(', ')}]`,
    );
}

/** An object of the flattened keys; defineProperty keeps a key such as "__proto__" an ordinary key. */
function flatObject(entries: Array<[string, StateValue]>): StateTree {
  const out: Record<string, StateValue> = Object.create(null);
  for (const [key, v] of entries)
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}
