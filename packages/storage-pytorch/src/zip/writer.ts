/**
 * Laying out a zip archive exactly as torch's writer (miniz) does: stored
 * records whose data starts on a 64-byte boundary (padded with an `FB` extra
 * field), local headers with the data-descriptor flag and zero sizes, a data
 * descriptor after each record, and the zip64 end records even for small
 * files. Returns the chunks to write; the bytes of each record are not copied.
 * The records' CRC-32s are computed beforehand (natively, across the cores).
 */
export const ALIGNMENT = 64;
const FLAGS = 0x0808; // data descriptor follows; names are UTF-8
const MAX32 = 0xffffffff;

export interface ZipRecord {
  name: string;
  data: Uint8Array;
}

class Header {
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.#view = new DataView(this.bytes.buffer);
  }
  u16(v: number): this {
    this.#view.setUint16(this.#at, v, true);
    this.#at += 2;
    return this;
  }
  u32(v: number): this {
    this.#view.setUint32(this.#at, v >>> 0, true);
    this.#at += 4;
    return this;
  }
  u64(v: number): this {
    this.#view.setBigUint64(this.#at, BigInt(v), true);
    this.#at += 8;
    return this;
  }
  raw(b: Uint8Array): this {
    this.bytes.set(b, this.#at);
    this.#at += b.byteLength;
    return this;
  }
}

interface Written {
  name: Uint8Array;
  crc: number;
  size: number;
  offset: number;
}

/** The chunks of a torch-style zip archive holding `records`, in order; `crcs[i]` is record i's CRC-32. */
export function zipChunks(records: readonly ZipRecord[], crcs: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  const written: Written[] = [];
  let offset = 0;
  const emit = (chunk: Uint8Array) => {
    chunks.push(chunk);
    offset += chunk.byteLength;
  };

  for (const [index, record] of records.entries()) {
    const name = Buffer.from(record.name, 'utf8');
    const headerEnd = offset + 30 + name.byteLength + 4;
    const pad = (ALIGNMENT - (headerEnd % ALIGNMENT)) % ALIGNMENT;
    const start = offset;
    emit(
      new Header(30 + name.byteLength + 4 + pad)
        .u32(0x04034b50)
        .u16(0) // version needed, as torch writes it
        .u16(FLAGS)
        .u16(0) // stored
        .u16(0)
        .u16(0) // time and date
        .u32(0)
        .u32(0)
        .u32(0) // crc and sizes: in the data descriptor
        .u16(name.byteLength)
        .u16(4 + pad)
        .raw(name)
        .u16(0x4246) // "FB": padding to the alignment
        .u16(pad)
        .raw(new Uint8Array(pad).fill(0x5a)).bytes,
    );
    const crc = crcs[index] ?? 0;
    const size = record.data.byteLength;
    emit(record.data);
    const big = size >= MAX32;
    const descriptor = new Header(big ? 24 : 16).u32(0x08074b50).u32(crc);
    if (big) descriptor.u64(size).u64(size);
    else descriptor.u32(size).u32(size);
    emit(descriptor.bytes);
    written.push({ name, crc, size, offset: start });
  }

  const centralStart = offset;
  for (const entry of written) {
    const needs64 = entry.size >= MAX32 || entry.offset >= MAX32;
    const extra = needs64
      ? new Header(28).u16(0x0001).u16(24).u64(entry.size).u64(entry.size).u64(entry.offset).bytes
      : new Uint8Array(0);
    emit(
      new Header(46 + entry.name.byteLength + extra.byteLength)
        .u32(0x02014b50)
        .u16(needs64 ? 45 : 0) // version made by
        .u16(needs64 ? 45 : 0) // version needed
        .u16(FLAGS)
        .u16(0)
        .u16(0)
        .u16(0)
        .u32(entry.crc)
        .u32(needs64 ? MAX32 : entry.size)
        .u32(needs64 ? MAX32 : entry.size)
        .u16(entry.name.byteLength)
        .u16(extra.byteLength)
        .u16(0) // comment
        .u16(0) // disk
        .u16(0) // internal attributes
        .u32(0) // external attributes
        .u32(needs64 ? MAX32 : entry.offset)
        .raw(entry.name)
        .raw(extra).bytes,
    );
  }
  const centralSize = offset - centralStart;
  const zip64End = offset;
  const count = written.length;
  emit(
    new Header(56)
      .u32(0x06064b50)
      .u64(44)
      .u16(0x031e)
      .u16(45)
      .u32(0)
      .u32(0)
      .u64(count)
      .u64(count)
      .u64(centralSize)
      .u64(centralStart).bytes,
  );
  emit(new Header(20).u32(0x07064b50).u32(0).u64(zip64End).u32(1).bytes);
  emit(
    new Header(22)
      .u32(0x06054b50)
      .u16(0)
      .u16(0)
      .u16(Math.min(count, 0xffff))
      .u16(Math.min(count, 0xffff))
      .u32(Math.min(centralSize, MAX32))
      .u32(Math.min(centralStart, MAX32))
      .u16(0).bytes,
  );
  return chunks;
}
