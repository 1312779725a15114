/**
 * Reading the zip archives torch.save writes, from the central directory, with
 * every size and offset checked against the file before it is used. Stored
 * entries are handed out as byte ranges of the file (zero-copy from a
 * mapping); deflated ones are inflated up to a cap. Nothing is ever written
 * to disk, so entry names cannot escape anywhere, but names with `..` or an
 * absolute path are refused all the same: no legitimate checkpoint has them.
 */
import { crc32, inflateRawSync } from 'node:zlib';
import { FormatError, LIMITS, limitExceeded } from '@ckpt/core';

/** Where bytes come from: a mapped file (views) or plain reads (for header-only work). */
export interface ByteSource {
  readonly path: string;
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
}

export interface ZipEntry {
  name: string;
  method: number;
  /** Bytes stored in the archive. */
  compressedSize: number;
  /** Bytes once inflated (equal to compressedSize for stored entries). */
  size: number;
  crc32: number;
  /** Where the entry's stored bytes start. */
  dataOffset: number;
}

export interface ZipLimits {
  /** Bytes all deflated entries may inflate to, together (default 1 GiB, or CKPT_MAX_INFLATED_BYTES). */
  maxInflatedBytes?: number;
  /** Most entries an archive may list (default 1,000,000). */
  maxEntries?: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_COMMENT = 0xffff;

function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at] as number) | ((bytes[at + 1] as number) << 8);
}

function u32(bytes: Uint8Array, at: number): number {
  return (u16(bytes, at) + u16(bytes, at + 2) * 0x10000) >>> 0;
}

/** A u64 as a number, refusing anything past 2^53 (no file is that large). */
function u64(bytes: Uint8Array, at: number, fail: (m: string) => FormatError): number {
  const value = u32(bytes, at) + u32(bytes, at + 4) * 2 ** 32;
  if (!Number.isSafeInteger(value)) throw fail('a 64-bit size or offset is beyond any real file');
  return value;
}

export class ZipArchive {
  readonly entries: readonly ZipEntry[];
  readonly #byName: Map<string, ZipEntry>;

  private constructor(
    readonly source: ByteSource,
    entries: ZipEntry[],
    readonly limits: Required<ZipLimits>,
  ) {
    this.entries = entries;
    this.#byName = new Map(entries.map((e) => [e.name, e]));
  }

  static open(source: ByteSource, limits: ZipLimits = {}): ZipArchive {
    const resolved = {
      maxInflatedBytes: limits.maxInflatedBytes ?? LIMITS.inflatedBytes,
      maxEntries: limits.maxEntries ?? 1_000_000,
    };
    return new ZipArchive(source, readCentralDirectory(source, resolved), resolved);
  }

  get(name: string): ZipEntry | undefined {
    return this.#byName.get(name);
  }

  /** An entry's bytes: a view of the source when stored, inflated (and CRC-checked) when deflated. */
  read(entry: ZipEntry, options: { verifyCrc?: boolean } = {}): Uint8Array {
    const fail = (message: string) =>
      new FormatError(`zip entry ${JSON.stringify(entry.name)}: ${message}`, { path: this.source.path });
    const stored = this.source.read(entry.dataOffset, entry.compressedSize);
    if (entry.method === 0) {
      if (options.verifyCrc && entry.crc32 !== 0 && crc32(stored) !== entry.crc32) throw fail('CRC-32 does not match');
      return stored;
    }
    let inflated: Buffer;
    try {
      inflated = inflateRawSync(stored, { maxOutputLength: Math.max(1, entry.size) });
    } catch (error) {
      throw fail(`cannot be inflated (${(error as Error).message})`);
    }
    if (inflated.byteLength !== entry.size)
      throw fail(`inflates to ${inflated.byteLength} bytes, not the ${entry.size} declared`);
    if (entry.crc32 !== 0 && crc32(inflated) !== entry.crc32) throw fail('CRC-32 does not match');
    return new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.byteLength);
  }
}

function findEndRecord(source: ByteSource, fail: (m: string) => FormatError): number {
  const tailLength = Math.min(source.size, 22 + MAX_COMMENT);
  const tail = source.read(source.size - tailLength, tailLength);
  for (let i = tailLength - 22; i >= 0; i--) {
    if (u32(tail, i) === EOCD && i + 22 + u16(tail, i + 20) === tailLength) return source.size - tailLength + i;
  }
  throw fail('no end-of-central-directory record: not a zip archive, or truncated');
}

function checkName(name: string, fail: (m: string) => FormatError): void {
  const parts = name.split(/[\\/]/);
  if (name.startsWith('/') || name.startsWith('\\') || /^[a-zA-Z]:/.test(name) || parts.includes('..')) {
    throw fail(`entry name ${JSON.stringify(name)} points outside the archive folder`);
  }
  if (name.includes('\0')) throw fail(`entry name ${JSON.stringify(name)} holds a NUL byte`);
}

function readCentralDirectory(source: ByteSource, limits: Required<ZipLimits>): ZipEntry[] {
  let totalInflated = 0;
  const fail = (message: string) => new FormatError(`malformed zip archive: ${message}`, { path: source.path });
  if (source.size < 22) throw fail(`${source.size} bytes is too short for a zip archive`);
  const eocdAt = findEndRecord(source, fail);
  const eocd = source.read(eocdAt, 22);
  let count = u16(eocd, 10);
  let cdSize = u32(eocd, 12);
  let cdOffset = u32(eocd, 16);

  // Zip64: the locator sits just before the end record and points at the zip64 end record.
  if (eocdAt >= 20) {
    const locator = source.read(eocdAt - 20, 20);
    if (u32(locator, 0) === ZIP64_LOCATOR) {
      const at = u64(locator, 8, fail);
      if (at + 56 > eocdAt) throw fail('the zip64 end record lies outside the file');
      const record = source.read(at, 56);
      if (u32(record, 0) !== ZIP64_EOCD) throw fail('the zip64 locator points at something else');
      count = u64(record, 32, fail);
      cdSize = u64(record, 40, fail);
      cdOffset = u64(record, 48, fail);
    }
  }
  if (count > limits.maxEntries) throw fail(`it lists ${count} entries, more than the ${limits.maxEntries} allowed`);
  if (cdOffset + cdSize > eocdAt) throw fail('the central directory runs past its end record');

  const directory = source.read(cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  const names = new Set<string>();
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > directory.byteLength || u32(directory, at) !== CENTRAL)
      throw fail(`central directory entry ${i} is missing or damaged`);
    const flags = u16(directory, at + 8);
    const method = u16(directory, at + 10);
    const crc = u32(directory, at + 16);
    let compressedSize = u32(directory, at + 20);
    let size = u32(directory, at + 24);
    const nameLength = u16(directory, at + 28);
    const extraLength = u16(directory, at + 30);
    const commentLength = u16(directory, at + 32);
    let localOffset = u32(directory, at + 42);
    const end = at + 46 + nameLength + extraLength + commentLength;
    if (end > directory.byteLength) throw fail(`central directory entry ${i} runs past the directory`);
    const name = Buffer.from(directory.buffer, directory.byteOffset + at + 46, nameLength).toString('utf8'); // no copy
    // Zip64 extra field: the 64-bit values for those fields that hold 0xffffffff, in order.
    const extra = directory.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength);
    for (let e = 0; e + 4 <= extra.byteLength; ) {
      const id = u16(extra, e);
      const length = u16(extra, e + 2);
      if (id === 0x0001) {
        let p = e + 4;
        const next = () => {
          if (p + 8 > e + 4 + length) throw fail(`entry ${JSON.stringify(name)} has a short zip64 field`);
          const v = u64(extra, p, fail);
          p += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      e += 4 + length;
    }
    at = end;

    checkName(name, fail);
    if (names.has(name)) throw fail(`entry ${JSON.stringify(name)} appears twice`);
    names.add(name);
    if (flags & 0x1) throw fail(`entry ${JSON.stringify(name)} is encrypted`);
    if (method !== 0 && method !== 8) throw fail(`entry ${JSON.stringify(name)} uses compression method ${method}`);
    if (method === 0 && size !== compressedSize)
      throw fail(`stored entry ${JSON.stringify(name)} has two different sizes`);
    // The cap covers the whole archive: entries pointing at one deflated stream count each time.
    if (method === 8) totalInflated += size;
    if (method === 8 && totalInflated > limits.maxInflatedBytes) {
      throw limitExceeded(
        `the zip archive's deflated entries would inflate to more than ${limits.maxInflatedBytes} bytes in all (entry ${JSON.stringify(name)})`,
        'inflatedBytes',
      );
    }
    if (localOffset + 30 > cdOffset) throw fail(`entry ${JSON.stringify(name)} has its header outside the archive`);
    const local = source.read(localOffset, 30);
    if (u32(local, 0) !== LOCAL)
      throw fail(`entry ${JSON.stringify(name)} has no local header where the directory says`);
    const dataOffset = localOffset + 30 + u16(local, 26) + u16(local, 28);
    if (dataOffset + compressedSize > cdOffset)
      throw fail(`entry ${JSON.stringify(name)} runs past the end of the archive data`);
    entries.push({ name, method, compressedSize, size, crc32: crc, dataOffset });
  }
  return entries;
}
