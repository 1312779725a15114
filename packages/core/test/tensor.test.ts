import { describe, expect, it } from 'vitest';
import {
  byteLengthOf,
  copyTensor,
  DTYPES,
  dtypeInfo,
  elementBits,
  elementSize,
  fromNumbers,
  fromTypedArray,
  isTensor,
  nbytes,
  numel,
  tensor,
  tensorsEqual,
  toNumbers,
  toTypedArray,
  zeros,
} from '../src/index.js';

describe('dtypes', () => {
  it('know their sizes, including the sub-byte ones', () => {
    expect(elementBits('F4')).toBe(4);
    expect(elementBits('F6_E3M2')).toBe(6);
    expect(elementSize('BF16')).toBe(2);
    expect(elementSize('C64')).toBe(8);
    expect(elementSize('C128')).toBe(16);
    expect(() => elementSize('F4')).toThrow(expect.objectContaining({ code: 'CKPT_UNSUPPORTED' }));
    expect(byteLengthOf('F4', [3, 2])).toBe(3);
    expect(byteLengthOf('F6_E2M3', [4])).toBe(3);
    expect(() => byteLengthOf('F4', [3])).toThrow(/not a whole number of bytes/);
    expect(DTYPES).toHaveLength(23);
  });

  it('refuse unknown names with the list of known ones', () => {
    expect(() => dtypeInfo('F128' as never)).toThrow(expect.objectContaining({ code: 'CKPT_INVALID_ARGUMENT' }));
  });

  it('count elements exactly or refuse', () => {
    expect(numel([])).toBe(1);
    expect(numel([0, 5])).toBe(0);
    expect(numel([2, 3, 4])).toBe(24);
    expect(() => numel([-1])).toThrow(/non-negative/);
    expect(() => numel([2 ** 30, 2 ** 30])).toThrow(/2\^53/);
  });
});

describe('tensors', () => {
  it('check their byte length against dtype and shape', () => {
    const t = tensor('F32', [2, 2], new Uint8Array(16));
    expect(isTensor(t)).toBe(true);
    expect(nbytes(t)).toBe(16);
    expect(Object.isFrozen(t)).toBe(true);
    expect(() => tensor('F32', [2, 2], new Uint8Array(15))).toThrow(
      expect.objectContaining({ code: 'CKPT_INVALID_ARGUMENT', expected: '16 bytes', found: '15 bytes' }),
    );
    expect(() => tensor('F32', [1], [1, 2, 3, 4] as never)).toThrow(/Uint8Array/);
  });

  it('wrap typed arrays without copying and view them back', () => {
    const values = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = fromTypedArray(values, [2, 3]);
    expect(t.dtype).toBe('F32');
    expect(t.data.buffer).toBe(values.buffer);
    const back = toTypedArray(t);
    expect(back).toBeInstanceOf(Float32Array);
    expect(back.buffer).toBe(values.buffer);
    expect(fromTypedArray(new BigInt64Array([2n ** 62n])).dtype).toBe('I64');
    expect(fromTypedArray(Buffer.from([1, 2])).dtype).toBe('U8'); // a Node Buffer is a Uint8Array
    expect(fromTypedArray(new Float32Array(4), undefined, 'C64').shape).toEqual([2]);
  });

  it('copy misaligned bytes into an aligned typed array', () => {
    const backing = new Uint8Array(9);
    new DataView(backing.buffer).setFloat64(1, Math.E, true);
    const t = tensor('F64', [1], backing.subarray(1));
    expect(Array.from(toTypedArray(t) as Float64Array)).toEqual([Math.E]);
  });

  it('give 64-bit integers exactly as bigints', () => {
    const big = 2n ** 60n + 1n;
    const t = fromTypedArray(new BigInt64Array([big, -big]));
    expect(Array.from(toTypedArray(t) as BigInt64Array)).toEqual([big, -big]);
  });

  it('convert numbers to and from every float and integer dtype', () => {
    const values = [0, 1, -2, 0.5, 96]; // all exact in every dtype below, F8 included
    for (const dtype of ['F16', 'BF16', 'F32', 'F64', 'F8_E4M3', 'F8_E5M2', 'I8', 'I32', 'I64', 'U16'] as const) {
      const positive = dtype.startsWith('U') ? values.map(Math.abs) : values;
      const exact = dtype.startsWith('I') || dtype.startsWith('U') ? positive.map(Math.trunc) : positive;
      expect(toNumbers(fromNumbers(dtype, exact)), dtype).toEqual(exact);
    }
    expect(toNumbers(fromNumbers('C64', [1, -1, 2, 0.5]))).toEqual([1, -1, 2, 0.5]);
    expect(fromNumbers('C64', [1, -1, 2, 0.5]).shape).toEqual([2]);
  });

  it('make zeros and independent copies, and compare by bytes', () => {
    const z = zeros('BF16', [3]);
    expect(Array.from(z.data)).toEqual([0, 0, 0, 0, 0, 0]);
    const a = fromNumbers('F32', [1, 2]);
    const b = copyTensor(a);
    expect(tensorsEqual(a, b)).toBe(true);
    b.data[0] = 9;
    expect(tensorsEqual(a, b)).toBe(false);
    expect(tensorsEqual(a, fromNumbers('F32', [1, 2], [2, 1]))).toBe(false);
  });

  it('hold sub-byte types as opaque bytes', () => {
    const t = tensor('F4', [4], new Uint8Array([0x12, 0x34]));
    expect(() => toTypedArray(t)).toThrow(/smaller than a byte/);
  });
});
