import { describe, expect, it } from 'vitest';
import { isCkptError, parseSize } from '../src/index.js';

describe('parseSize: one parser for every size option and flag', () => {
  it.each([
    ['5GB', 5e9],
    ['5G', 5e9],
    ['2GiB', 2 ** 31],
    ['2Gi', 2 ** 31],
    ['500MiB', 500 * 2 ** 20],
    ['1.5KiB', 1536],
    ['10mb', 1e7],
    ['1024', 1024],
    ['1024B', 1024],
    [' 3 TB ', 3e12],
    [4096, 4096],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it('refuses what is not a size, and zero unless allowed', () => {
    for (const bad of ['', 'GB', '5 XB', '-1', '5GBB', 'five', 1.5, -3, Number.NaN, 2 ** 60]) {
      let error: unknown;
      try {
        parseSize(bad as string);
      } catch (e) {
        error = e;
      }
      expect(isCkptError(error, 'CKPT_INVALID_ARGUMENT'), String(bad)).toBe(true);
    }
    expect(() => parseSize('0')).toThrow(/a size must be positive/);
    expect(parseSize('0', { allowZero: true })).toBe(0);
    expect(() => parseSize('x', { what: '--max-size' })).toThrow(/as --max-size/);
  });
});
