/**
 * The header as the addon reads it: validated by the reference `safetensors`
 * crate and handed over as flat arrays. Names are sliced out on demand and
 * entries built only when asked for, so listing a file costs one string slice
 * per tensor.
 */
import { DTYPES, type DType, FormatError } from '@ckpt/core';
import { type NativeError, NativeErrorCode, readSafetensorsHeader, type SafetensorsHeaderTable } from '@ckpt/native';
import { type HeaderEntry, LENGTH_PREFIX_BYTES, type ParsedHeader } from './header.js';

/** A validated header and the size of the file it was read from. */
export interface FileHeader extends ParsedHeader {
  fileSize: number;
  /** Tensor names in file order. */
  readonly names: string[];
}

/** The header read by the addon, or undefined when the addon is not in use. */
export function readHeaderNatively(path: string): FileHeader | undefined {
  const table = readSafetensorsHeader(path);
  return table && new TableHeader(table);
}

/** Whether `error` is the addon refusing the file's contents (rather than failing to read it). */
export function isFormatRefusal(error: unknown): error is NativeError {
  return (error as NativeError | undefined)?.code === NativeErrorCode.Format;
}

/** A refusal the JavaScript parser did not share: reported with the addon's reason. */
export function refusalOf(error: NativeError, path: string): FormatError {
  return new FormatError(error.message, { path, cause: error });
}

class TableHeader implements FileHeader {
  readonly headerLength: number;
  readonly dataStart: number;
  readonly fileSize: number;
  readonly metadata: Record<string, string> | undefined;
  readonly #table: SafetensorsHeaderTable;
  #names: string[] | undefined;
  #entries: HeaderEntry[] | undefined;

  constructor(table: SafetensorsHeaderTable) {
    this.#table = table;
    this.headerLength = table.headerLength;
    this.dataStart = LENGTH_PREFIX_BYTES + table.headerLength;
    this.fileSize = table.fileSize;
    this.metadata = metadataOf(table.metadata);
  }

  get names(): string[] {
    if (!this.#names) {
      const { names, nameEnds } = this.#table;
      const out = new Array<string>(nameEnds.length);
      let start = 0;
      for (let i = 0; i < out.length; i++) {
        const end = nameEnds[i] as number;
        out[i] = names.slice(start, end);
        start = end;
      }
      this.#names = out;
    }
    return this.#names;
  }

  get entries(): HeaderEntry[] {
    if (!this.#entries) {
      const { dtypes, ranks, dims, offsets } = this.#table;
      const names = this.names;
      const entries = new Array<HeaderEntry>(names.length);
      let dim = 0;
      for (let i = 0; i < entries.length; i++) {
        const rank = ranks[i] as number;
        entries[i] = {
          name: names[i] as string,
          dtype: DTYPES[dtypes[i] as number] as DType,
          shape: Array.from(dims.subarray(dim, dim + rank)),
          begin: offsets[i] as number,
          end: offsets[i + 1] as number,
        };
        dim += rank;
      }
      this.#entries = entries;
    }
    return this.#entries;
  }
}

/** `__metadata__` from its key, value pairs, in an object without a prototype (the keys come from the file). */
function metadataOf(pairs: readonly string[]): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  const metadata = Object.create(null) as Record<string, string>;
  for (let i = 0; i + 1 < pairs.length; i += 2) metadata[pairs[i] as string] = pairs[i + 1] as string;
  return metadata;
}
