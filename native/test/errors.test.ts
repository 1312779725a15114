import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NativeError } from '../src/index.js';
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
