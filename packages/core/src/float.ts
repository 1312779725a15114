/**
 * Conversions between float32 and the float types JavaScript lacks: BF16,
 * F16 and the F8 family, bit-exact with torch and ml_dtypes: round to nearest,
 * ties to even; overflow gives infinity where the format has one and NaN where
 * it does not (E4M3FN, the FNUZ types); E8M0 follows torch's own rounding.
 * Inputs are rounded to float32 first, as converting a float32 tensor would.
 */
import { UnsupportedError } from './errors.js';

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f32Bits(value: number): number {
  scratchF32[0] = value;
  return scratchU32[0] as number;
}

function bitsF32(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0] as number;
}

// --- BF16: the top half of a float32 -------------------------------------

export function bf16ToF32(bits: number): number {
  return bitsF32((bits & 0xffff) << 16);
}

export function f32ToBf16(value: number): number {
  const bits = f32Bits(value);
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff; // NaN stays NaN (quiet)
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

// --- Small floats described by their layout -------------------------------

/**
 * - `ieee`: all-ones exponent is infinity (zero mantissa) or NaN.
 * - `fn`: no infinities; only all-ones exponent and mantissa is NaN (E4M3FN).
 * - `fnuz`: no infinities and no negative zero; 0x80 is the one NaN.
 */
interface MiniFloat {
  exponentBits: number;
  mantissaBits: number;
  bias: number;
  kind: 'ieee' | 'fn' | 'fnuz';
}

const F16: MiniFloat = { exponentBits: 5, mantissaBits: 10, bias: 15, kind: 'ieee' };
const E5M2: MiniFloat = { exponentBits: 5, mantissaBits: 2, bias: 15, kind: 'ieee' };
const E4M3FN: MiniFloat = { exponentBits: 4, mantissaBits: 3, bias: 7, kind: 'fn' };
const E4M3FNUZ: MiniFloat = { exponentBits: 4, mantissaBits: 3, bias: 8, kind: 'fnuz' };
const E5M2FNUZ: MiniFloat = { exponentBits: 5, mantissaBits: 2, bias: 16, kind: 'fnuz' };

function decodeMini(format: MiniFloat, code: number): number {
  const { exponentBits: e, mantissaBits: m, bias, kind } = format;
  const signBit = 1 << (e + m);
  if (kind === 'fnuz' && code === signBit) return Number.NaN;
  const negative = (code & signBit) !== 0;
  const exponent = (code >> m) & ((1 << e) - 1);
  const mantissa = code & ((1 << m) - 1);
  const maxExponent = (1 << e) - 1;
  if (kind === 'ieee' && exponent === maxExponent) {
    return mantissa !== 0 ? Number.NaN : negative ? -Infinity : Infinity;
  }
  if (kind === 'fn' && exponent === maxExponent && mantissa === (1 << m) - 1) return Number.NaN;
  const magnitude = exponent === 0 ? mantissa * 2 ** (1 - bias - m) : (1 + mantissa / 2 ** m) * 2 ** (exponent - bias);
  return negative ? -magnitude : magnitude;
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The exponent e with 2^e <= value < 2^(e+1), exactly. */
function binaryExponent(value: number): number {
  let e = Math.floor(Math.log2(value));
  if (2 ** e > value) e -= 1;
  else if (2 ** (e + 1) <= value) e += 1;
  return e;
}

function encodeMini(format: MiniFloat, input: number): number {
  const { exponentBits: e, mantissaBits: m, bias, kind } = format;
  const signBit = 1 << (e + m);
  const maxExponent = (1 << e) - 1;
  const nan =
    kind === 'fnuz'
      ? signBit
      : kind === 'fn'
        ? (maxExponent << m) | ((1 << m) - 1)
        : (maxExponent << m) | (1 << (m - 1));
  const value = Math.fround(input);
  if (Number.isNaN(value)) return kind === 'fnuz' ? nan : nan | (value < 0 ? signBit : 0);
  const negative = value < 0 || Object.is(value, -0);
  const sign = negative ? signBit : 0;
  // Overflow: infinity where there is one; NaN elsewhere (signed for E4M3FN, as torch does).
  const infinity = kind === 'ieee' ? sign | (maxExponent << m) : kind === 'fn' ? nan | sign : nan;
  const magnitude = Math.abs(value);
  if (magnitude === Infinity) return infinity;

  const topExponent = kind === 'ieee' ? maxExponent - 1 : maxExponent;
  const topMantissa = kind === 'fn' ? (1 << m) - 2 : (1 << m) - 1;
  const maxFinite = (1 + topMantissa / 2 ** m) * 2 ** (topExponent - bias);
  const minNormal = 2 ** (1 - bias);

  // Round on the grid of the binade the value falls in (subnormal spacing below minNormal).
  const quantum = magnitude < minNormal ? 2 ** (1 - bias - m) : 2 ** (binaryExponent(magnitude) - m);
  const rounded = roundHalfEven(magnitude / quantum) * quantum;
  if (rounded > maxFinite) return infinity;
  if (rounded === 0) return kind === 'fnuz' ? 0 : sign;
  if (rounded < minNormal) return sign | (rounded / 2 ** (1 - bias - m));
  const exponent = binaryExponent(rounded);
  const mantissa = rounded / 2 ** (exponent - m) - 2 ** m;
  return sign | ((exponent + bias) << m) | mantissa;
}

// --- E8M0: a bare exponent (OCP MX scale), torch's rounding --------------------

function decodeE8M0(code: number): number {
  if (code === 0xff) return Number.NaN;
  return 2 ** (code - 127);
}

/** As torch's fp8e8m0fnu_from_fp32_value: the sign is ignored, mantissa >= 0.5 rounds up. */
function encodeE8M0(input: number): number {
  const bits = f32Bits(input);
  let exponent = (bits >>> 23) & 0xff;
  if (exponent === 0xff) return 0xff;
  const guard = (bits & 0x400000) !== 0;
  const round = (bits & 0x200000) !== 0;
  const sticky = (bits & 0x1fffff) !== 0;
  const normal = exponent > 0;
  if (guard && (round || sticky || normal)) exponent += 1;
  return exponent;
}

// --- Tables and the public functions -------------------------------------------

const tables = new Map<string, Float32Array>();

function table(name: string, size: number, decode: (code: number) => number): Float32Array {
  let found = tables.get(name);
  if (!found) {
    found = new Float32Array(size);
    for (let code = 0; code < size; code++) found[code] = decode(code);
    tables.set(name, found);
  }
  return found;
}

export function f16ToF32(bits: number): number {
  return table('F16', 65536, (c) => decodeMini(F16, c))[bits & 0xffff] as number;
}

export function f32ToF16(value: number): number {
  return encodeMini(F16, value);
}

/** Float types stored as raw bits that can be converted to and from float32. */
export type EncodedFloat = 'F16' | 'BF16' | 'F8_E5M2' | 'F8_E4M3' | 'F8_E8M0' | 'F8_E4M3FNUZ' | 'F8_E5M2FNUZ';

const F8_FORMATS: Record<string, MiniFloat> = {
  F8_E5M2: E5M2,
  F8_E4M3: E4M3FN,
  F8_E4M3FNUZ: E4M3FNUZ,
  F8_E5M2FNUZ: E5M2FNUZ,
};

/** Decodes one element's raw bits of `dtype` to a number. */
export function decodeFloat(dtype: EncodedFloat, bits: number): number {
  switch (dtype) {
    case 'BF16':
      return bf16ToF32(bits);
    case 'F16':
      return f16ToF32(bits);
    case 'F8_E8M0':
      return table('F8_E8M0', 256, decodeE8M0)[bits & 0xff] as number;
    default: {
      const format = F8_FORMATS[dtype];
      if (!format) throw new UnsupportedError(`no float conversion for ${dtype}`);
      return table(dtype, 256, (c) => decodeMini(format, c))[bits & 0xff] as number;
    }
  }
}

/** Encodes a number (rounded to float32 first) as raw bits of `dtype`. */
export function encodeFloat(dtype: EncodedFloat, value: number): number {
  switch (dtype) {
    case 'BF16':
      return f32ToBf16(value);
    case 'F16':
      return f32ToF16(value);
    case 'F8_E8M0':
      return encodeE8M0(value);
    default: {
      const format = F8_FORMATS[dtype];
      if (!format) throw new UnsupportedError(`no float conversion for ${dtype}`);
      return encodeMini(format, value);
    }
  }
}

export function isEncodedFloat(dtype: string): dtype is EncodedFloat {
  return dtype === 'F16' || dtype === 'BF16' || dtype in F8_FORMATS || dtype === 'F8_E8M0';
}
