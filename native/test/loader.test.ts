import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backend } from '../src/index.js';

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
  it('uses the native binding by default', () => {
    if (process.env.CKPT_NATIVE === 'js') return expect(backend.kind).toBe('js');
    expect(backend).toEqual({ kind: 'native' });
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

  it('exposes the generated napi loader to CommonJS and ES modules', () => {
    const cjs = run(['--input-type=commonjs', '-e', `console.log(typeof require('@ckpt/native/binding').sha256File)`]);
    expect(cjs.stdout).toBe('function');
    const esm = run([
      '--input-type=module',
      '-e',
      `import b from '@ckpt/native/binding'; console.log(typeof b.sha256File)`,
    ]);
    expect(esm.stdout).toBe('function');
  });

  it('falls back to JavaScript when CKPT_NATIVE=js', () => {
    const r = run(['--input-type=module', '-e', `import * as m from '@ckpt/native'; ${printBackend}`], {
      CKPT_NATIVE: 'js',
    });
    expect(r.stdout).toBe('js function function');
  });

  it('falls back to JavaScript, saying why, when the binary cannot load', () => {
    // Point the napi loader at a file that is not a binary: it fails as a missing one would.
    const r = run(
      ['--input-type=module', '-e', `import * as m from '@ckpt/native'; console.log(JSON.stringify(m.backend))`],
      { CKPT_NATIVE: '', NAPI_RS_NATIVE_LIBRARY_PATH: fileURLToPath(import.meta.url) },
    );
    const info = JSON.parse(r.stdout);
    expect(info.kind).toBe('js');
    expect(info.reason).toMatch(/native binding did not load/);
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
