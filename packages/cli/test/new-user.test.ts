import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tensor } from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import '../../resolver-b2/test/support/moto.js';
import { ckptCommand } from '../src/commands/demo.js';
import { BIN, ckpt, FIXTURES, scratch } from './support/run.js';

// Defects a new user met on a fresh clone, each checked the way that user met it.
const WORKSPACE = fileURLToPath(new URL('../../../', import.meta.url));
const LAUNCHER = fileURLToPath(new URL('../bin/ckpt.js', import.meta.url));

let root: string;
let demoOut: string;
let config: string[];

beforeAll(() => {
  root = scratch('new-user');
  const run = ckpt(['demo', '--epochs', '6', '--crash-at', '3'], { cwd: root });
  expect(run.code, run.stderr).toBe(0);
  demoOut = run.stdout;
  config = ['--config', join(root, 'ckpt-demo', 'ckpt.config.yaml')];
});

/** Runs a shell line with a registry that answers nothing, so any registry request fails. */
function shell(line: string, cwd: string) {
  return spawnSync('bash', ['-c', line], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', CKPT_NO_PROGRESS: '1', npm_config_registry: 'http://127.0.0.1:9/' },
    timeout: 120_000,
  });
}

describe('the ckpt command is there after npm install', () => {
  it('the bin is a launcher outside dist/, so npm links it before dist/ is built', () => {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8'));
    expect(pkg.bin.ckpt).toBe('./bin/ckpt.js');
    const link = join(WORKSPACE, 'node_modules', '.bin', 'ckpt');
    expect(realpathSync(link)).toBe(realpathSync(LAUNCHER));
    expect(ckptCommand(WORKSPACE)).toBe('npx ckpt');
    // npx finds the project's bin from a subfolder too (here one without package.json: docs/).
    expect(ckptCommand(join(WORKSPACE, 'docs'))).toBe('npx ckpt');
  });

  it('prints the launcher path where npx would not find this ckpt', () => {
    expect(ckptCommand(root)).toMatch(/^node \S*packages\/cli\/bin\/ckpt\.js$/);
  });

  it('every command the demo prints runs as printed, without asking a registry', () => {
    const section = demoOut.slice(demoOut.indexOf('Explore the result'));
    const commands = section
      .split('\n')
      .slice(1)
      .map((line) => line.trim())
      .filter(Boolean);
    expect(commands.length).toBeGreaterThanOrEqual(9);
    for (const command of commands) {
      const run = shell(command, root);
      // `diff` exits 1 when the two checkpoints differ, which they do: that is its answer, not a failure.
      const ok = run.status === 0 || (/ diff /.test(command) && run.status === 1 && run.stdout.length > 0);
      expect(ok, `${command}\n${run.stdout}\n${run.stderr}`).toBe(true);
      expect(run.stderr, command).toBe('');
    }
  });

  it('the launcher runs from the workspace with npx, offline from the registry', () => {
    const run = shell('npx ckpt --version', WORKSPACE);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('a closed stdout ends the command quietly', () => {
  it('inspect | head -1 exits 0 with nothing on stderr, in text and JSON', async () => {
    const dir = scratch('epipe');
    const state = Object.fromEntries(
      Array.from({ length: 4000 }, (_, i) => [`layer.${i}.weight`, tensor('F32', [1], new Uint8Array(4))]),
    );
    const file = join(dir, 'many.safetensors');
    await safetensors.save(file, state);
    for (const flags of ['', '--json']) {
      const run = shell(`node ${BIN} inspect ${file} ${flags} | head -1; exit \${PIPESTATUS[0]}`, dir);
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toBe('');
      expect(run.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    }
  });
});

describe('one precedence: flags > environment > config file > defaults', () => {
  it('--offline beats CKPT_OFFLINE=0, which beats the file, which beats the default', async () => {
    const endpoint = inject('s3Endpoint');
    const dir = scratch('offline');
    const yaml = (offline: boolean) =>
      `resolver:\n  cacheDir: cache\n  offline: ${offline}\n  bucket:\n    enabled: true\n    name: precedence\n    endpoint: ${endpoint}\n    forcePathStyle: true\n`;
    const env = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', CKPT_OFFLINE: undefined };
    writeFileSync(join(dir, 'ckpt.config.yaml'), yaml(false));
    const offline = /offline/;
    const online = /s3:\/\/precedence\/absent\.pt/;
    // default + file(false): online
    expect(ckpt(['resolve', 'absent.pt'], { cwd: dir, env }).stderr).toMatch(online);
    // flag beats env
    const flagged = ckpt(['--offline', 'resolve', 'absent.pt'], { cwd: dir, env: { ...env, CKPT_OFFLINE: '0' } });
    expect(flagged.code).toBe(1);
    expect(flagged.stderr).toMatch(offline);
    // env beats file
    expect(ckpt(['resolve', 'absent.pt'], { cwd: dir, env: { ...env, CKPT_OFFLINE: '1' } }).stderr).toMatch(offline);
    writeFileSync(join(dir, 'ckpt.config.yaml'), yaml(true));
    expect(ckpt(['resolve', 'absent.pt'], { cwd: dir, env }).stderr).toMatch(offline);
    expect(ckpt(['resolve', 'absent.pt'], { cwd: dir, env: { ...env, CKPT_OFFLINE: '0' } }).stderr).toMatch(online);
    // The bucket name: environment over file.
    const renamed = ckpt(['resolve', 'absent.pt'], {
      cwd: dir,
      env: { ...env, CKPT_OFFLINE: '0', CKPT_BUCKET_NAME: 'from-env' },
    });
    expect(renamed.stderr).toMatch(/s3:\/\/from-env\/absent\.pt/);
  });

  it('the cache folder: environment over file', () => {
    const dir = scratch('cache-dir');
    writeFileSync(join(dir, 'ckpt.config.yaml'), 'resolver:\n  cacheDir: from-file\n  offline: true\n');
    expect(ckpt(['cache', 'ls', '--json'], { cwd: dir }).json().folder).toBe(join(dir, 'from-file'));
    const env = { CKPT_CACHE_DIR: join(dir, 'from-env') };
    expect(ckpt(['cache', 'ls', '--json'], { cwd: dir, env }).json().folder).toBe(join(dir, 'from-env'));
  });

  it('the experiment, the database and the config file', () => {
    const dbFlag = join(root, 'ckpt-demo', 'ckpt.db');
    const missing = join(root, 'absent.db');
    expect(ckpt([...config, 'stats', '--json']).code).toBe(0); // the file's database
    expect(ckpt([...config, 'stats'], { env: { CKPT_DATABASE: missing } }).stderr).toContain(missing); // env over file
    expect(ckpt([...config, 'stats', '--database', dbFlag], { env: { CKPT_DATABASE: missing } }).code).toBe(0); // flag over env
    expect(ckpt([...config, 'list'], { env: { CKPT_EXPERIMENT: 'nope' } }).stderr).toContain('no experiment "nope"');
    expect(ckpt([...config, 'list', '-e', 'spiral-mlp', '--json'], { env: { CKPT_EXPERIMENT: 'nope' } }).code).toBe(0);
    const other = scratch('config-flag');
    writeFileSync(join(other, 'bad.yaml'), 'checkpoints:\n  nonsense: 1\n');
    expect(ckpt(['list'], { cwd: other, env: { CKPT_CONFIG: join(other, 'bad.yaml') } }).stderr).toContain('nonsense');
    expect(
      ckpt([...config, 'list', '--json'], { cwd: other, env: { CKPT_CONFIG: join(other, 'bad.yaml') } }).code,
    ).toBe(0);
  });
});

describe('small output defects', () => {
  it('hash -c escapes a name with a newline as sha256sum -c does', () => {
    const dir = scratch('newline');
    writeFileSync(join(dir, 'new\nline.bin'), 'x');
    writeFileSync(join(dir, 'back\\slash.bin'), 'y');
    const sums = ckpt(['hash', 'new\nline.bin', 'back\\slash.bin'], { cwd: dir });
    writeFileSync(join(dir, 'SUMS'), sums.stdout);
    const check = ckpt(['hash', '-c', 'SUMS'], { cwd: dir });
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toBe('\\new\\nline.bin: OK\nback\\slash.bin: OK\n');
    const reference = spawnSync('sha256sum', ['-c', 'SUMS'], { cwd: dir, encoding: 'utf8' });
    if (reference.status === 0) expect(check.stdout).toBe(reference.stdout);
  });

  it('summary --json reports the model the records name', () => {
    expect(ckpt([...config, 'summary', '--json']).json().model).toBe('mlp');
  });

  it('a TorchScript file is named for what it is, exit 1, no stack trace', () => {
    const run = ckpt(['inspect', join(FIXTURES, 'torchscript_linear.jit')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('[CKPT_PROGRAM]');
    expect(run.stderr).toContain('TorchScript');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it("hides Node's process warnings unless CKPT_SHOW_WARNINGS is set", () => {
    // A warning raised while the command runs, as a dependency's deprecation or a timer warning would be.
    const preload = `--import=data:text/javascript,setTimeout(()=>process.emitWarning('a-dependency-is-deprecated'),1000)`;
    const hidden = ckpt(['--version'], { env: { NODE_OPTIONS: preload } });
    expect(hidden.code).toBe(0);
    expect(hidden.stderr).toBe('');
    const shown = ckpt(['--version'], { env: { NODE_OPTIONS: preload, CKPT_SHOW_WARNINGS: '1' } });
    expect(shown.stderr).toMatch(/Warning: a-dependency-is-deprecated/);
  });

  it('resolver commands print no third-party warnings', () => {
    const endpoint = inject('s3Endpoint');
    const dir = scratch('quiet');
    writeFileSync(
      join(dir, 'ckpt.config.yaml'),
      `resolver:\n  cacheDir: cache\n  bucket:\n    enabled: true\n    name: quiet\n    endpoint: ${endpoint}\n    forcePathStyle: true\n`,
    );
    const env = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
    const run = ckpt(['resolve', 'absent.pt'], { cwd: dir, env });
    expect(run.code).toBe(1);
    // The one line is ckpt's own error; the AWS SDK's Node-version notice is not printed.
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^error: /);
    expect(run.stderr).not.toMatch(/Warning|AWS SDK/);
  });
});
