import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backend, getImplementation, platformName } from '../src/index.js';

const packageRoot = fileURLToPath(new URL('..', import.meta.url));

function run(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, args, {
    cwd: packageRoot,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return { ...result, stdout: result.stdout.trim() };
}

const printBackend = 'console.log(m.backend.kind + " " + typeof m.sha256File + " " + typeof m.mapFile)';

describe('loading @ckpt/native', () => {
  it('uses the local build in the workspace, and says so', () => {
    if (process.env.CKPT_NATIVE === 'js') return expect(backend.kind).toBe('js');
    expect(backend).toEqual({
      kind: 'native',
      source: 'local-build',
      path: join(packageRoot, 'binding', `ckpt-native.${platformName()}.node`),
    });
    expect(getImplementation()).toBe(backend);
  });

  it('names the platform package of each supported machine, and none for the others', () => {
    const glibc = () => false;
    const musl = () => true;
    expect(platformName('linux', 'x64', glibc)).toBe('linux-x64-gnu');
    expect(platformName('linux', 'x64', musl)).toBe('linux-x64-musl');
    expect(platformName('linux', 'arm64', glibc)).toBe('linux-arm64-gnu');
    expect(platformName('linux', 'arm64', musl)).toBeUndefined();
    expect(platformName('darwin', 'arm64')).toBe('darwin-arm64');
    expect(platformName('darwin', 'x64')).toBe('darwin-x64');
    expect(platformName('win32', 'x64')).toBe('win32-x64-msvc');
    expect(platformName('win32', 'ia32')).toBeUndefined();
    expect(platformName('freebsd', 'x64')).toBeUndefined();
    // Every platform built has its package folder, listed as an optional dependency.
    const manifest = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8'));
    // Windows is named, but has no package yet: the crate does not build there (see the README).
    const names = ['linux-x64-gnu', 'linux-x64-musl', 'linux-arm64-gnu', 'darwin-arm64', 'darwin-x64'];
    expect(Object.keys(manifest.optionalDependencies).sort()).toEqual(names.map((n) => `@ckpt/native-${n}`).sort());
    for (const name of names) {
      const platformPackage = JSON.parse(readFileSync(join(packageRoot, 'npm', name, 'package.json'), 'utf8'));
      expect(platformPackage.name).toBe(`@ckpt/native-${name}`);
      expect(platformPackage.version).toBe(manifest.version);
      expect(manifest.optionalDependencies[platformPackage.name]).toBe(manifest.version);
    }
  });

  it('prefers the platform package to the local build, unless its version differs', () => {
    if (process.env.CKPT_NATIVE === 'js') return;
    const name = `native-${platformName()}`;
    const folder = join(packageRoot, 'node_modules', '@ckpt', name);
    const binary = `ckpt-native.${platformName()}.node`;
    const version = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).version;
    const install = (packageVersion: string) => {
      mkdirSync(folder, { recursive: true });
      copyFileSync(join(packageRoot, 'binding', binary), join(folder, binary));
      writeFileSync(
        join(folder, 'package.json'),
        JSON.stringify({ name: `@ckpt/${name}`, version: packageVersion, main: binary }),
      );
    };
    const loaded = () =>
      JSON.parse(
        run(
          ['--input-type=module', '-e', `import * as m from '@ckpt/native'; console.log(JSON.stringify(m.backend))`],
          {
            CKPT_NATIVE: '',
          },
        ).stdout,
      );
    try {
      install(version);
      expect(loaded()).toEqual({ kind: 'native', source: 'platform-package', path: `@ckpt/${name}` });
      install('0.0.1-other');
      expect(loaded()).toMatchObject({ kind: 'native', source: 'local-build' });
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('works from an ES module', () => {
    const r = run(['--input-type=module', '-e', `import * as m from '@ckpt/native'; ${printBackend}`], {
      CKPT_NATIVE: '',
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('native function function');
  });

  it('works from CommonJS', () => {
    const r = run(['--input-type=commonjs', '-e', `const m = require('@ckpt/native'); ${printBackend}`], {
      CKPT_NATIVE: '',
    });
    expect(r.stdout).toBe('native function function');
  });

  it('falls back to JavaScript when CKPT_NATIVE=js, and says nothing: it was asked for', () => {
    const r = run(['--input-type=module', '-e', `import * as m from '@ckpt/native'; ${printBackend}`], {
      CKPT_NATIVE: 'js',
    });
    expect(r.stdout).toBe('js function function');
    expect(r.stderr).toBe('');
  });

  it('falls back to JavaScript when the binary cannot load, saying why once on stderr unless silenced', () => {
    // Point the loader at a file that is not a binary: it fails as a missing one would.
    const broken = { CKPT_NATIVE: '', NAPI_RS_NATIVE_LIBRARY_PATH: fileURLToPath(import.meta.url) };
    const r = run(
      [
        '--input-type=module',
        '-e',
        `import * as m from '@ckpt/native'; console.log(JSON.stringify(m.getImplementation()))`,
      ],
      broken,
    );
    const info = JSON.parse(r.stdout);
    expect(info.kind).toBe('js');
    expect(info.reason).toMatch(/native binding did not load: NAPI_RS_NATIVE_LIBRARY_PATH=/);
    expect(r.stderr.match(/ckpt: the native binary did not load/g)).toHaveLength(1);
    expect(r.stderr).toMatch(/CKPT_NATIVE_QUIET=1 to silence this/);
    const quiet = run(['--input-type=module', '-e', `import '@ckpt/native'`], { ...broken, CKPT_NATIVE_QUIET: '1' });
    expect(quiet.stderr).toBe('');
  });

  it('fails loudly with CKPT_NATIVE=native when the binary cannot load', () => {
    const r = run(['--input-type=module', '-e', `import '@ckpt/native'`], {
      CKPT_NATIVE: 'native',
      NAPI_RS_NATIVE_LIBRARY_PATH: fileURLToPath(import.meta.url),
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/CKPT_NATIVE=native but the native binding did not load/);
  });
});
