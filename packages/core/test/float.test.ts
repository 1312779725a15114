import { beforeAll, describe, expect, it } from 'vitest';
import { requirePythonModules, runPythonJson, skipPython } from '../../../tools/testing/python.js';
import { bf16ToF32, decodeFloat, type EncodedFloat, encodeFloat, f16ToF32, f32ToBf16, f32ToF16 } from '../src/index.js';

const F8: EncodedFloat[] = ['F8_E5M2', 'F8_E4M3', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ'];

describe('decoding known values', () => {
  it.each([
    ['F16', 0x3c00, 1],
    ['F16', 0xc000, -2],
    ['F16', 0x7bff, 65504],
    ['F16', 0x0001, 2 ** -24],
    ['F16', 0x7c00, Infinity],
    ['BF16', 0x3f80, 1],
    ['BF16', 0xc0a0, -5],
    ['F8_E4M3', 0x7e, 448],
    ['F8_E4M3', 0x01, 2 ** -9],
    ['F8_E5M2', 0x7b, 57344],
    ['F8_E5M2', 0x7c, Infinity],
    ['F8_E4M3FNUZ', 0x7f, 240],
    ['F8_E5M2FNUZ', 0x7f, 57344],
    ['F8_E8M0', 127, 1],
    ['F8_E8M0', 0, 2 ** -127],
    ['F8_E8M0', 254, 2 ** 127],
  ] as const)('%s 0x%s is %s', (dtype, bits, value) => {
    expect(decodeFloat(dtype, bits)).toBe(value);
  });

  it.each([
    ['F16', 0x7e00],
    ['F8_E4M3', 0x7f],
    ['F8_E4M3', 0xff],
    ['F8_E5M2', 0x7e],
    ['F8_E4M3FNUZ', 0x80],
    ['F8_E5M2FNUZ', 0x80],
    ['F8_E8M0', 0xff],
  ] as const)('%s 0x%s is NaN', (dtype, bits) => {
    expect(decodeFloat(dtype, bits)).toBeNaN();
  });
});

describe('every code survives decode then encode', () => {
  it.each(['F16', 'BF16', ...F8, 'F8_E8M0'] as EncodedFloat[])('%s', (dtype) => {
    const codes = dtype === 'F16' || dtype === 'BF16' ? 65536 : 256;
    for (let code = 0; code < codes; code++) {
      const value = decodeFloat(dtype, code);
      if (Number.isNaN(value)) continue;
      expect(encodeFloat(dtype, value), `${dtype} code ${code} (${value})`).toBe(code);
    }
  });
});

describe('rounding and overflow follow torch', () => {
  it('rounds to nearest with ties to even', () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie, even stays
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, odd rounds up
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
  });

  it('overflows to infinity where the format has one and to NaN where it does not', () => {
    expect(f32ToF16(70000)).toBe(0x7c00);
    expect(encodeFloat('F8_E5M2', 1e9)).toBe(0x7c);
    expect(encodeFloat('F8_E4M3', 464)).toBe(0x7e); // the tie rounds to even: 448
    expect(encodeFloat('F8_E4M3', 465)).toBe(0x7f); // NaN
    expect(encodeFloat('F8_E4M3', -500)).toBe(0xff); // NaN keeps the sign
    expect(encodeFloat('F8_E4M3FNUZ', 1e9)).toBe(0x80);
    expect(encodeFloat('F8_E4M3FNUZ', -0)).toBe(0); // FNUZ has no negative zero
  });

  it('E8M0 rounds as torch does: sign ignored, mantissa >= 0.5 rounds up, zero is the smallest scale', () => {
    expect(encodeFloat('F8_E8M0', 1.5)).toBe(128);
    expect(encodeFloat('F8_E8M0', 1.49)).toBe(127);
    expect(encodeFloat('F8_E8M0', -4)).toBe(129);
    expect(encodeFloat('F8_E8M0', 0)).toBe(0);
    expect(encodeFloat('F8_E8M0', Infinity)).toBe(255);
    expect(encodeFloat('F8_E8M0', 2 ** 127 * 1.9)).toBe(255);
  });

  it('bf16 and f16 decode by table and bit shift alike', () => {
    expect(bf16ToF32(f32ToBf16(Math.PI))).toBe(3.140625);
    expect(f16ToF32(f32ToF16(Math.PI))).toBe(3.140625);
  });
});

// Cross-check against ml_dtypes (the float8 and bfloat16 types of JAX) and numpy's float16.
describe.skipIf(skipPython)('against numpy and ml_dtypes', () => {
  const edges = [
    0,
    -0,
    1,
    -1,
    448,
    464,
    465,
    480,
    240,
    248,
    57344,
    61440,
    65504,
    65520,
    1e-8,
    2 ** -9,
    2 ** -10,
    3 * 2 ** -11,
  ];
  const random = Array.from({ length: 4000 }, (_, i) => {
    const magnitude = 2 ** (Math.random() * 80 - 40);
    return (i % 2 ? -1 : 1) * magnitude;
  });
  const values = [...edges, ...random, Number.NaN, Infinity, -Infinity].map(Math.fround);
  const script = `
import json, sys, numpy as np, ml_dtypes
values = np.array(json.load(sys.stdin), dtype=np.uint32).view(np.float32)
out = {'F16': values.astype(np.float16).view(np.uint16).tolist(),
       'BF16': values.astype(ml_dtypes.bfloat16).view(np.uint16).tolist()}
for name, t in [('F8_E5M2', 'float8_e5m2'), ('F8_E4M3', 'float8_e4m3fn'),
                ('F8_E4M3FNUZ', 'float8_e4m3fnuz'), ('F8_E5M2FNUZ', 'float8_e5m2fnuz')]:
    out[name] = values.astype(getattr(ml_dtypes, t)).view(np.uint8).tolist()
print(json.dumps(out))
`;

  let expected: Record<string, number[]> = {};
  beforeAll(() => {
    requirePythonModules(['numpy', 'ml_dtypes']);
    expected = runPythonJson(script, Array.from(new Uint32Array(Float32Array.from(values).buffer)));
  });

  it.each(['F16', 'BF16', ...F8] as EncodedFloat[])('%s encodes like the reference', (dtype) => {
    const got = values.map((v) => encodeFloat(dtype, v));
    const mismatches = got.flatMap((code, i) =>
      code === expected[dtype]?.[i] ? [] : [`${values[i]} -> ${code}, reference ${expected[dtype]?.[i]}`],
    );
    expect(mismatches.slice(0, 10)).toEqual([]);
  });
});
