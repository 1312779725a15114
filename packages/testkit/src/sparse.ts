/**
 * Files with huge tensors that cost nothing to make: a safetensors file whose
 * one U8 tensor is sparse (holes read as zeros) but for a few marked places.
 * For testing tensors past 4 GiB without writing gigabytes.
 */
import { closeSync, openSync, truncateSync, writeSync } from 'node:fs';

export interface SparseTensorFile {
  path: string;
  /** Where the tensor's bytes start in the file. */
  dataStart: number;
}

/**
 * Writes `path`: a safetensors file with one U8 tensor `name` of `size` bytes,
 * holding `marks` (text at byte offsets into the tensor) and zeros elsewhere.
 */
export function writeSparseSafetensors(
  path: string,
  name: string,
  size: number,
  marks: ReadonlyArray<readonly [offset: number, text: string]> = [],
): SparseTensorFile {
  let header = JSON.stringify({ [name]: { dtype: 'U8', shape: [size], data_offsets: [0, size] } });
  header += ' '.repeat((8 - (Buffer.byteLength(header) % 8)) % 8); // the data starts 8-aligned
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(header)));
  const dataStart = 8 + Buffer.byteLength(header);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, Buffer.concat([prefix, Buffer.from(header)]));
    for (const [at, text] of marks) {
      if (at < 0 || at + Buffer.byteLength(text) > size)
        throw new RangeError(`mark ${JSON.stringify(text)} at ${at} is outside the tensor`);
      writeSync(fd, Buffer.from(text), 0, Buffer.byteLength(text), dataStart + at);
    }
  } finally {
    closeSync(fd);
  }
  truncateSync(path, dataStart + size);
  return { path, dataStart };
}
