import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import { safetensors } from '../src/index.js';
import { build, hostileCases, ok } from './hostile-files.js';

const dir = mkdtempSync(join(tmpdir(), 'ckpt-st-hostile-'));

let counter = 0;
function fileOf(bytes: Buffer): string {
  const path = join(dir, `hostile-${counter++}.safetensors`);
  writeFileSync(path, bytes);
  return path;
}

describe('malformed and hostile headers', () => {
  it.each(hostileCases)('refuses %s with a FormatError naming the problem', async (_what, bytes, message) => {
    const path = fileOf(bytes);
    const error = await safetensors.load(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).code).toBe('CKPT_FORMAT');
    expect((error as FormatError).message).toMatch(message);
    expect((error as FormatError).path).toBe(path);
    await expect(safetensors.inspect(path)).rejects.toBeInstanceOf(FormatError);
  });

  it('reads a header padded with leading and trailing whitespace', async () => {
    const header = ` \n{${ok()}}  `;
    const path = fileOf(build(header, { data: 16 }));
    const { state } = await safetensors.load(path);
    expect(Object.keys(state)).toEqual(['x']);
  });

  it('reads a file with no tensors', async () => {
    const path = fileOf(build('{}'));
    expect((await safetensors.load(path)).state).toEqual({});
  });

  it('does not allocate for a huge declared header it refuses', async () => {
    // 2^63 and 100 MB headers are refused from the length alone, before any allocation.
    const before = process.memoryUsage().arrayBuffers;
    await expect(safetensors.inspect(fileOf(build('{}', { length: 99_999_999n })))).rejects.toThrow(
      /runs past the end/,
    );
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(50 << 20);
  });
});

describe('the duplicate-name scan', () => {
  it('sees through escapes and nesting', async () => {
    const { firstDuplicateKey } = await import('../src/index.js');
    expect(firstDuplicateKey('{"a\\"b":1,"a\\\\":{"a\\"b":2},"c":[{"c":1}]}')).toBeUndefined();
    expect(firstDuplicateKey('{"x":{"y":"}"},"z":1,"x":2}')).toBe('x');
    expect(firstDuplicateKey('{"\\u0061":1,"a":2}')).toBe('a');
    expect(firstDuplicateKey('{ "a" : 1 , "b" : [ "a" , "a" ] }')).toBeUndefined();
  });
});
