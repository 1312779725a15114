import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadBinding } from '../src/binding.js';
import { type Implementation, NativeError, NativeErrorCode, nativeMessage } from '../src/index.js';
import { implementations, isRoot, scratchDir } from './helpers.js';

const dir = scratchDir();
const missing = join(dir, 'missing.safetensors');
const folder = join(dir, 'a-folder');
mkdirSync(folder);

describe.each(implementations)('typed errors ($kind)', (impl) => {
  it('a missing file is CKPT_NOT_FOUND, naming the path', async () => {
    const error = await impl.sha256File(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NativeError);
    expect(error).toMatchObject({ code: 'CKPT_NOT_FOUND', path: missing });
    expect((error as Error).message).toContain(missing);
    expect(() => impl.mapFile(missing)).toThrow(expect.objectContaining({ code: 'CKPT_NOT_FOUND' }));
  });

  it('a directory is CKPT_IS_DIRECTORY', async () => {
    await expect(impl.sha256File(folder)).rejects.toMatchObject({ code: 'CKPT_IS_DIRECTORY', path: folder });
    expect(() => impl.mapFile(folder)).toThrow(expect.objectContaining({ code: 'CKPT_IS_DIRECTORY' }));
    await expect(impl.writeFileAtomic(folder, [new Uint8Array(1)])).rejects.toMatchObject({
      code: 'CKPT_IS_DIRECTORY',
    });
  });

  it('a device is CKPT_NOT_REGULAR_FILE rather than a hang', async () => {
    await expect(impl.sha256File('/dev/zero')).rejects.toMatchObject({ code: 'CKPT_NOT_REGULAR_FILE' });
    expect(() => impl.mapFile('/dev/zero')).toThrow(expect.objectContaining({ code: 'CKPT_NOT_REGULAR_FILE' }));
  });

  it('a missing target folder is CKPT_NOT_FOUND', async () => {
    await expect(impl.writeFileAtomic(join(dir, 'no', 'such', 'x.bin'), [])).rejects.toMatchObject({
      code: 'CKPT_NOT_FOUND',
    });
  });
});

const probe = fileURLToPath(new URL('./fixtures/hash-as-user.mjs', import.meta.url));

describe('permission denied', () => {
  // Root reads any file; as root the probe runs without the capabilities that
  // let it (setpriv drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH), staying uid 0.
  const secret = join(dir, 'secret.bin');
  writeFileSync(secret, 'not for everyone');
  chmodSync(secret, 0o000);
  const dropCapabilities = [
    '--bounding-set=-dac_override,-dac_read_search',
    '--inh-caps=-dac_override,-dac_read_search',
  ];

  it.each(['native', 'js'])('is CKPT_PERMISSION_DENIED (%s)', (kind) => {
    const [command, args] = isRoot
      ? ['setpriv', [...dropCapabilities, process.execPath, probe, kind, secret]]
      : [process.execPath, [probe, kind, secret]];
    const run = spawnSync(command, args, { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ code: 'CKPT_PERMISSION_DENIED', path: secret });
  });
});

describe('one message table, one way across the binding', () => {
  const [native, js] = implementations as [Implementation, Implementation];
  const small = join(dir, 'small.bin');
  writeFileSync(small, new Uint8Array(10));

  it('the binding throws Error objects with `code` and `path` as fields, not JSON in the message', async () => {
    const { binding, error: loadError } = loadBinding();
    if (!binding) throw new Error(`the native binding must load here: ${String(loadError)}`);
    const error = await binding.sha256File(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(NativeError); // raw, before the wrapper
    expect(error).toMatchObject({ code: 'CKPT_NOT_FOUND', path: missing, message: `file not found: ${missing}` });
    const sync = (() => {
      try {
        binding.NativeMappedFile.open(folder, false);
      } catch (e) {
        return e;
      }
    })();
    expect(sync).toMatchObject({ code: 'CKPT_IS_DIRECTORY', path: folder });
  });

  it('the Rust core and the JavaScript side word each failure the same', async () => {
    const failures: Array<(impl: Implementation) => Promise<unknown>> = [
      (impl) => impl.sha256File(missing),
      (impl) => impl.sha256File(folder),
      (impl) => impl.sha256File('/dev/zero'),
      async (impl) => impl.mapFile(small).view(8, 4),
      async (impl) => impl.mapFile(small).view(-1, 4),
    ];
    for (const fail of failures) {
      const [a, b] = await Promise.all([native, js].map((impl) => fail(impl).catch((e: unknown) => e)));
      expect(a).toBeInstanceOf(NativeError);
      expect(b).toMatchObject({ code: (a as NativeError).code, message: (a as NativeError).message });
    }
  });

  it('every code has a line in messages.txt, and every line names a code', () => {
    const table = readFileSync(new URL('../messages.txt', import.meta.url), 'utf8')
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => line.split('\t')[0]);
    expect(new Set(table)).toEqual(new Set(Object.values(NativeErrorCode)));
    expect(nativeMessage(NativeErrorCode.OutOfBounds, { path: '/m', offset: 8, length: 4, size: 10 })).toBe(
      'byte range out of bounds: offset 8 + length 4 is past the end of /m (10 bytes)',
    );
  });
});
