import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { implementationOf, mapFile, sha256File } from '@ckpt/native';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CkptError,
  ErrorCode,
  FormatError,
  InvalidArgumentError,
  NativeError,
  NativeErrorCode,
  NotFoundError,
  UnsupportedError,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ckpt-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('one error family per code', () => {
  it('a missing file from the addon is a NotFoundError too, on both native paths', async () => {
    const missing = join(dir, 'nothing-here.safetensors');
    for (const kind of ['native', 'js'] as const) {
      const error = await implementationOf(kind)
        .sha256File(missing)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NativeError);
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error).not.toBeInstanceOf(FormatError);
    }
    expect(() => mapFile(missing)).toThrow(NotFoundError);
    await expect(sha256File(dir)).rejects.not.toBeInstanceOf(NotFoundError); // a directory is its own code
  });

  it('an invalid argument to the addon is an InvalidArgumentError', () => {
    const file = join(dir, 'ten.bin');
    writeFileSync(file, new Uint8Array(10));
    const mapped = mapFile(file);
    try {
      expect(() => mapped.view(-1, 1)).toThrow(InvalidArgumentError);
      expect(() => mapped.view(-1, 1)).toThrow(expect.objectContaining({ code: 'CKPT_INVALID_ARGUMENT' }));
    } finally {
      mapped.close();
    }
  });

  it('classes still narrow: an error of another code is not matched, and constructed ones match themselves', () => {
    const notFound = new NotFoundError('no checkpoint 7');
    expect(notFound).toBeInstanceOf(NotFoundError);
    expect(notFound).toBeInstanceOf(CkptError);
    expect(notFound).toBeInstanceOf(Error);
    expect(notFound).not.toBeInstanceOf(UnsupportedError);
    expect(new UnsupportedError('x')).toBeInstanceOf(UnsupportedError);
    expect(new NativeError(NativeErrorCode.Locked, 'held')).not.toBeInstanceOf(NotFoundError);
    expect({ code: ErrorCode.NotFound }).not.toBeInstanceOf(NotFoundError); // a look-alike is not a ckpt error
  });

  it('every code of both registries is in the table of the core README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const code of [...Object.values(ErrorCode), ...Object.values(NativeErrorCode)]) {
      expect(readme, code).toContain(`\`${code}\``);
    }
  });
});
