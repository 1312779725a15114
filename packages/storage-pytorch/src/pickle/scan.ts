/**
 * Lists the globals a pickle of any protocol references, by walking its
 * opcodes without running any of them: for error messages that say what a
 * refused file would have done ("it references posix.system").
 */
import { Op } from './opcodes.js';

const FIXED: Record<number, number> = {
  [Op.BININT]: 4,
  [Op.BININT1]: 1,
  [Op.BININT2]: 2,
  [Op.BINGET]: 1,
  [Op.LONG_BINGET]: 4,
  [Op.BINPUT]: 1,
  [Op.LONG_BINPUT]: 4,
  [Op.BINFLOAT]: 8,
  [Op.PROTO]: 1,
  [Op.EXT1]: 1,
  [Op.EXT2]: 2,
  [Op.EXT4]: 4,
  [Op.FRAME]: 8,
};
/** Opcodes followed by a length of this many bytes, then that many bytes. */
const PREFIXED: Record<number, number> = {
  [Op.SHORT_BINSTRING]: 1,
  [Op.SHORT_BINUNICODE]: 1,
  [Op.SHORT_BINBYTES]: 1,
  [Op.LONG1]: 1,
  [Op.BINSTRING]: 4,
  [Op.BINUNICODE]: 4,
  [Op.BINBYTES]: 4,
  [Op.LONG4]: 4,
  [Op.BINUNICODE8]: 8,
  [Op.BINBYTES8]: 8,
  [Op.BYTEARRAY8]: 8,
};
const LINES: Record<number, number> = {
  [Op.INT]: 1,
  [Op.LONG]: 1,
  [Op.FLOAT]: 1,
  [Op.STRING]: 1,
  [Op.UNICODE]: 1,
  [Op.PERSID]: 1,
  [Op.GET]: 1,
  [Op.PUT]: 1,
  [Op.INST]: 2,
  [Op.GLOBAL]: 2,
};
const STRINGS = new Set<number>([Op.SHORT_BINUNICODE, Op.BINUNICODE, Op.BINUNICODE8, Op.SHORT_BINSTRING, Op.BINSTRING]);

/** The globals referenced from `start` to the end of `bytes` (at most `limit`), in order of appearance. */
export function referencedGlobals(bytes: Uint8Array, start = 0, limit = 8): string[] {
  const found: string[] = [];
  const recent: string[] = [];
  let pos = start;
  const text = (from: number, to: number) => Buffer.from(bytes.subarray(from, to)).toString('latin1');
  while (pos < bytes.byteLength && found.length < limit) {
    const code = bytes[pos++] as number;
    if (code === Op.STOP) {
      recent.length = 0;
      continue;
    }
    const fixed = FIXED[code];
    if (fixed !== undefined) {
      pos += fixed;
      continue;
    }
    const prefix = PREFIXED[code];
    if (prefix !== undefined) {
      if (pos + prefix > bytes.byteLength) break;
      let length = 0;
      for (let i = prefix - 1; i >= 0; i--) length = length * 256 + (bytes[pos + i] as number);
      pos += prefix;
      if (STRINGS.has(code)) recent.push(text(pos, Math.min(pos + length, bytes.byteLength)));
      pos += length;
      continue;
    }
    const lines = LINES[code];
    if (lines !== undefined) {
      const parts: string[] = [];
      for (let i = 0; i < lines; i++) {
        const end = bytes.indexOf(0x0a, pos);
        if (end < 0) return found;
        parts.push(text(pos, end));
        pos = end + 1;
      }
      if (code === Op.GLOBAL || code === Op.INST) found.push(parts.join('.'));
      if (code === Op.STRING || code === Op.UNICODE) recent.push((parts[0] ?? '').replace(/^['"]|['"]$/g, ''));
      continue;
    }
    if (code === Op.STACK_GLOBAL && recent.length >= 2) found.push(`${recent.at(-2)}.${recent.at(-1)}`);
  }
  return [...new Set(found)];
}
