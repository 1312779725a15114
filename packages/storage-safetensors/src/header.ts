/**
 * Parsing and validating a safetensors header, rule for rule as the reference
 * (huggingface/safetensors `tensor.rs`), with every size checked before use.
 * Everything after this module trusts what it returns.
 */
import { byteLengthOf, type DType, FormatError, isDType } from '@ckpt/core';

/** The reference refuses headers over this many bytes. */
export const MAX_HEADER_BYTES = 100_000_000;
export const LENGTH_PREFIX_BYTES = 8;

export interface HeaderEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Offsets relative to the data section. */
  begin: number;
  end: number;
}

export interface ParsedHeader {
  /** N: bytes of JSON (with padding) after the 8-byte length. */
  headerLength: number;
  /** Where tensor data starts in the file: 8 + N. */
  dataStart: number;
  /** Entries in file order (by offset). */
  entries: HeaderEntry[];
  metadata: Record<string, string> | undefined;
}

/**
 * The header length in the first 8 bytes, checked against the limit and the
 * file size. Returns N.
 */
export function readHeaderLength(prefix: Uint8Array, fileSize: number, path: string): number {
  if (fileSize < LENGTH_PREFIX_BYTES || prefix.byteLength < LENGTH_PREFIX_BYTES) {
    throw new FormatError(`not a safetensors file: it has ${fileSize} bytes, fewer than the 8-byte header length`, {
      path,
      expected: 'at least 8 bytes',
      found: `${fileSize} bytes`,
    });
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw new FormatError(`safetensors header length ${length} exceeds the ${MAX_HEADER_BYTES}-byte limit`, {
      path,
      expected: `at most ${MAX_HEADER_BYTES}`,
      found: length.toString(),
    });
  }
  const n = Number(length);
  if (LENGTH_PREFIX_BYTES + n > fileSize) {
    throw new FormatError(`safetensors header length ${n} runs past the end of the ${fileSize}-byte file`, {
      path,
      expected: `at most ${fileSize - LENGTH_PREFIX_BYTES}`,
      found: String(n),
    });
  }
  return n;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** A hostile value, shown short: never stringified whole (it may be a million levels deep or gigabytes long). */
function shortJson(value: unknown): string {
  if (Array.isArray(value)) {
    const flat = value.length <= 8 && value.every((v) => v === null || typeof v !== 'object');
    return flat ? JSON.stringify(value).slice(0, 200) : `an array of ${value.length} items`;
  }
  if (typeof value === 'object' && value !== null) return describeJson(value);
  return (JSON.stringify(value) ?? String(value)).slice(0, 200);
}

/** Parses the N header bytes and validates every entry against the file size. */
export function parseHeader(bytes: Uint8Array, fileSize: number, path: string): ParsedHeader {
  const headerLength = bytes.byteLength;
  const fail = (message: string, details: { expected?: string; found?: string } = {}) =>
    new FormatError(message, { path, ...details });

  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw fail('safetensors header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw fail(`safetensors header is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw fail('safetensors header is not a JSON object', { expected: 'an object', found: describeJson(json) });
  }
  const duplicate = firstDuplicateKey(text, Object.keys(json).length);
  if (duplicate !== undefined) {
    throw fail(`safetensors header names ${JSON.stringify(duplicate)} twice`, { found: duplicate });
  }

  const fraction = firstWrittenFraction(text);
  if (fraction !== undefined) {
    throw fail(`safetensors header writes the number ${fraction} where shapes and data_offsets hold integers`, {
      expected: 'integers written without a fraction or exponent',
      found: fraction,
    });
  }

  let metadata: Record<string, string> | undefined;
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(value, fail);
      continue;
    }
    entries.push(parseEntry(name, value, fail));
  }

  // Tensors must tile the data section exactly: sorted by offset, each
  // starting where the previous ended, the last ending at the end of the file.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let position = 0;
  for (const entry of entries) {
    if (entry.begin !== position) {
      const what = entry.begin > position ? 'leaves a gap' : 'overlaps the previous tensor';
      throw fail(`tensor ${JSON.stringify(entry.name)} starts at data byte ${entry.begin}: it ${what}`, {
        expected: `data_offsets starting at ${position}`,
        found: `[${entry.begin}, ${entry.end}]`,
      });
    }
    position = entry.end;
  }
  const dataStart = LENGTH_PREFIX_BYTES + headerLength;
  const expectedSize = dataStart + position;
  if (expectedSize > fileSize) {
    throw fail(`tensor data runs past the end of the file: it needs ${expectedSize} bytes, the file has ${fileSize}`, {
      expected: `${expectedSize} bytes`,
      found: `${fileSize} bytes`,
    });
  }
  if (expectedSize < fileSize) {
    throw fail(`the file has ${fileSize - expectedSize} trailing bytes after the last tensor`, {
      expected: `${expectedSize} bytes`,
      found: `${fileSize} bytes`,
    });
  }
  return { headerLength, dataStart, entries, metadata };
}

type Fail = (message: string, details?: { expected?: string; found?: string }) => FormatError;

function parseMetadata(value: unknown, fail: Fail): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fail('safetensors __metadata__ is not an object of strings', { found: describeJson(value) });
  }
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw fail(`safetensors __metadata__ values must be strings; ${JSON.stringify(key)} holds ${describeJson(v)}`, {
        expected: 'a string',
        found: describeJson(v),
      });
    }
  }
  return value as Record<string, string>;
}

function parseEntry(name: string, value: unknown, fail: Fail): HeaderEntry {
  const where = `tensor ${JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name)}`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fail(`${where} is not described by an object`, { found: describeJson(value) });
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isDType(dtype) || dtype === 'C128') {
    throw fail(`${where} has an unknown dtype ${shortJson(dtype)}`, { found: shortJson(dtype) });
  }
  if (Array.isArray(shape) && shape.length > 64) {
    throw fail(`${where} has ${shape.length} dimensions, more than the 64 numpy and torch allow`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d))) {
    throw fail(`${where} has a shape that is not a list of integers`, { found: shortJson(shape) });
  }
  if (shape.some((d: number) => d < 0)) {
    throw fail(`${where} has a negative dimension in shape [${shape.join(', ')}]`, { found: JSON.stringify(shape) });
  }
  // Overflow is named as the reference names it: past 64 bits (counted exactly only when past 2^53).
  const approximate = (shape as number[]).reduce((n, d) => n * d, 1);
  if (!Number.isSafeInteger(approximate)) {
    let count = 1n;
    for (const d of shape as number[]) {
      count *= BigInt(d);
      if (count >= 2n ** 64n) throw fail(`${where} shape [${shape.join(', ')}] overflows 64 bits`);
    }
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
  ) {
    throw fail(`${where} has data_offsets that are not two non-negative integers`, {
      found: shortJson(offsets),
    });
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw fail(`${where} has data_offsets that end before they begin`, { found: `[${begin}, ${end}]` });
  let expected: number;
  try {
    expected = byteLengthOf(dtype, shape);
  } catch {
    throw fail(`${where} shape [${shape.join(', ')}] of ${dtype} is too large or not a whole number of bytes`);
  }
  if (end - begin !== expected) {
    throw fail(
      `${where}: ${dtype} of shape [${shape.join(', ')}] takes ${expected} bytes, data_offsets span ${end - begin}`,
      {
        expected: `${expected} bytes`,
        found: `${end - begin} bytes`,
      },
    );
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/**
 * The first key that appears twice at the top level of a (valid) JSON object.
 * JSON.parse keeps the last silently; a header must not hide a tensor that
 * way. `parsedKeys` is how many keys JSON.parse kept: when the text has as
 * many top-level members there is no duplicate, and no key needs decoding.
 */
export function firstDuplicateKey(text: string, parsedKeys?: number): string | undefined {
  const spans = topLevelKeySpans(text);
  if (parsedKeys !== undefined && spans.length === parsedKeys) return undefined;
  const seen = new Set<string>();
  for (const [start, end] of spans) {
    const key = JSON.parse(text.slice(start, end)) as string;
    if (seen.has(key)) return key;
    seen.add(key);
  }
  return undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const DOT = 0x2e;
const SMALL_E = 0x65;
const CAPITAL_E = 0x45;

/** Just past the closing quote of the string starting at `i`. */
function stringEnd(text: string, i: number): number {
  let j = i;
  for (;;) {
    j = text.indexOf('"', j + 1);
    if (j < 0) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(j - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return j + 1;
  }
}

/**
 * The first number written with a fraction or an exponent inside an array of
 * a tensor entry (a shape or data_offsets), such as `2.0` or `1e3`.
 * JSON.parse reads those as integers; the reference refuses them.
 */
function firstWrittenFraction(text: string): string | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i) - 1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    } else if (depth === 3 && (c === DOT || ((c === SMALL_E || c === CAPITAL_E) && isDigit(text.charCodeAt(i - 1))))) {
      const match = /-?[0-9]*\.?[0-9]*(?:[eE][-+]?[0-9]*)?$/.exec(text.slice(Math.max(0, i - 32), i + 1));
      const rest = /^[-+0-9eE.]*/.exec(text.slice(i + 1, i + 33));
      return `${match?.[0] ?? ''}${rest?.[0] ?? ''}`;
    }
  }
  return undefined;
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** [start, end) of every top-level key's string token, scanning iteratively (no recursion). */
function topLevelKeySpans(text: string): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (depth === 1 && expectKey) spans.push([i, end]);
      expectKey = false;
      i = end - 1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      expectKey = depth === 1;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    } else if (c === COMMA) {
      expectKey = depth === 1;
    } else if (c === COLON) {
      expectKey = false;
    }
  }
  return spans;
}
