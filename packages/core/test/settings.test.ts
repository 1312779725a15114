import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CheckpointManager,
  FormatError,
  InvalidArgumentError,
  loadSettings,
  managerOptions,
  SETTINGS,
} from '../src/index.js';
import { scratch, testBackend, uniqueName } from './support/helpers.js';

const root = scratch('ckpt-settings-');

/** A fresh folder with `files` in it. */
function folder(files: Record<string, string> = {}): string {
  const dir = join(root, uniqueName('cwd'));
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const CONFIG = `checkpoints:
  directory: runs
  experiment: from-file
  monitor: val_acc
  mode: max
tracker:
  database: db/track.db
resolver:
  cacheDir: cache
  offline: false
  bucket:
    enabled: true
    name: file-bucket
    prefix: zoo/
`;

describe('one loader, one precedence: flags > environment > files > defaults', () => {
  it('defaults when nothing is set, with paths from the working folder', () => {
    const cwd = folder();
    const settings = loadSettings({ env: {}, cwd });
    expect(settings.source).toBeUndefined();
    expect(settings.checkpoints).toEqual({
      directory: join(cwd, 'checkpoints'),
      format: 'safetensors',
      monitor: 'val_loss',
      mode: 'min',
      save: {},
      retention: {},
      integrity: { verifyOnLoad: false, fsync: true },
      backup: 'none',
      compression: 'none',
    });
    expect(settings.tracker).toEqual({ database: join(cwd, 'ckpt.db'), project: 'default' });
    expect(settings.resolver).toMatchObject({ offline: false, bucket: { enabled: false, name: '', prefix: '' } });
    for (const row of SETTINGS) expect(settings.origins[row.key]).toBe('default');
  });

  it('the file beats the defaults (its relative paths from its own folder), the environment beats the file, flags beat both', () => {
    const cwd = folder({ 'ckpt.config.yaml': CONFIG });
    const file = join(cwd, 'ckpt.config.yaml');
    const fromFile = loadSettings({ env: {}, cwd: '/', configFile: file });
    expect(fromFile.source).toBe(file);
    expect(fromFile.checkpoints).toMatchObject({ directory: join(cwd, 'runs'), experiment: 'from-file', mode: 'max' });
    expect(fromFile.tracker.database).toBe(join(cwd, 'db/track.db'));
    expect(fromFile.resolver).toMatchObject({
      cacheDir: join(cwd, 'cache'),
      bucket: { name: 'file-bucket', prefix: 'zoo/' },
    });
    expect(fromFile.origins['checkpoints.directory']).toBe(`file ${file}`);

    const env = {
      CKPT_DIR: 'env-runs',
      CKPT_EXPERIMENT: 'from-env',
      CKPT_OFFLINE: 'yes',
      CKPT_BUCKET_NAME: 'env-bucket',
    };
    const fromEnv = loadSettings({ env, cwd });
    expect(fromEnv.checkpoints).toMatchObject({
      directory: join(cwd, 'env-runs'),
      experiment: 'from-env',
      mode: 'max',
    });
    expect(fromEnv.resolver).toMatchObject({ offline: true, bucket: { name: 'env-bucket', prefix: 'zoo/' } });
    expect(fromEnv.origins['resolver.offline']).toBe('env CKPT_OFFLINE');

    const flagged = loadSettings({
      env,
      cwd,
      flags: { 'checkpoints.experiment': 'from-flag', 'resolver.offline': false, 'checkpoints.directory': undefined },
    });
    expect(flagged.checkpoints.experiment).toBe('from-flag');
    expect(flagged.resolver.offline).toBe(false);
    expect(flagged.checkpoints.directory).toBe(join(cwd, 'env-runs')); // an undefined flag hides nothing
    expect(flagged.origins['checkpoints.experiment']).toBe('flag');
  });

  it('a path starting with ~/ is in the home folder, from a file, the environment or a flag', () => {
    const cwd = folder({ 'ckpt.config.yaml': 'resolver:\n  cacheDir: ~/.cache/ckpt/checkpoints\n' });
    expect(loadSettings({ env: {}, cwd }).resolver.cacheDir).toBe(join(homedir(), '.cache/ckpt/checkpoints'));
    expect(loadSettings({ env: { CKPT_DIR: '~/runs' }, cwd }).checkpoints.directory).toBe(join(homedir(), 'runs'));
    expect(loadSettings({ env: {}, cwd, flags: { 'tracker.database': '~/t.db' } }).tracker.database).toBe(
      join(homedir(), 't.db'),
    );
  });

  it('finds the config file by CKPT_CONFIG, and refuses a named file that is not there', () => {
    const cwd = folder({ 'other.json': JSON.stringify({ tracker: { project: 'p' } }) });
    expect(loadSettings({ env: { CKPT_CONFIG: 'other.json' }, cwd }).tracker.project).toBe('p');
    expect(() => loadSettings({ env: {}, cwd, configFile: 'nope.yaml' })).toThrow(InvalidArgumentError);
    expect(loadSettings({ env: { CKPT_CONFIG: 'other.json' }, cwd, configFile: false }).tracker.project).toBe(
      'default',
    );
  });

  it("reads the resolver's own file (seed 002's ENV.INPUT) below ckpt.config.yaml", () => {
    const cwd = folder({
      'linnaeus.yaml':
        'ENV:\n  INPUT:\n    CACHE_DIR: /data/checkpoints\n    DATA_DIR: /elsewhere\n    BUCKET:\n      ENABLED: True\n      NAME: seed-bucket\n      PATH_PREFIX: modelZoo/\n',
      'ckpt.config.yaml': 'resolver:\n  bucket:\n    name: config-bucket\n',
    });
    const settings = loadSettings({ env: { CKPT_RESOLVER_CONFIG: 'linnaeus.yaml' }, cwd });
    expect(settings.resolver).toMatchObject({
      cacheDir: '/data/checkpoints',
      bucket: { enabled: true, name: 'config-bucket', prefix: 'modelZoo/' },
    });
  });

  it('refuses unknown keys, wrong types, bad words and bad switches, naming the key', () => {
    const bad = (text: string) => () => loadSettings({ env: {}, cwd: folder({ 'ckpt.config.yaml': text }) });
    expect(bad('checkpoints:\n  directry: x\n')).toThrow(/unknown setting `checkpoints.directry`/);
    expect(bad('checkpoint: {}\n')).toThrow(/unknown setting `checkpoint`/);
    expect(bad('checkpoints:\n  mode: sideways\n')).toThrow(/`checkpoints.mode` must be one of min, max/);
    expect(bad('tracker:\n  database: 3\n')).toThrow(FormatError);
    expect(bad('resolver: [1, 2]\n')).toThrow(/resolver must be a mapping/);
    expect(bad('[unclosed\n')).toThrow(/not valid YAML/);
    expect(() => loadSettings({ env: { CKPT_OFFLINE: 'maybe' }, cwd: folder() })).toThrow(
      /CKPT_OFFLINE="maybe" is not a switch/,
    );
  });

  it('hostile files: prototype keys are unknown settings, deep nesting is refused at the first unknown key', () => {
    const proto = () =>
      loadSettings({ env: {}, cwd: folder({ 'ckpt.config.json': '{"__proto__": {"directory": "x"}}' }) });
    expect(proto).toThrow(/unknown setting `__proto__`/);
    const deep = `${'{"resolver":'.repeat(1)}${'{"a":'.repeat(5000)}1${'}'.repeat(5001)}`;
    expect(() => loadSettings({ env: {}, cwd: folder({ 'ckpt.config.json': deep }) })).toThrow(
      /unknown setting `resolver.a`/,
    );
    expect(({} as Record<string, unknown>).directory).toBeUndefined();
  });

  it("the manager's configuration: save, retention, integrity, backup, compression become manager options", async () => {
    const cwd = folder({
      'ckpt.config.yaml':
        'checkpoints:\n  monitor: acc\n  mode: max\n  save:\n    everyEpochs: 2\n  retention:\n    keepLast: 1\n  integrity:\n    verifyOnLoad: true\n  backup: best\n',
    });
    const settings = loadSettings({ env: {}, cwd });
    expect(settings.checkpoints.save).toEqual({ everyEpochs: 2 });
    expect(settings.checkpoints.integrity).toEqual({ verifyOnLoad: true, fsync: true });
    const options = managerOptions(settings);
    expect(options).toMatchObject({
      best: { monitor: 'acc', mode: 'max' },
      backup: { when: 'best' },
      compression: false,
    });
    const manager = await CheckpointManager.open({
      ...options,
      storage: testBackend(),
      directory: join(cwd, 'runs'),
      experiment: 'e',
    });
    const outcomes = [];
    for (let epoch = 1; epoch <= 4; epoch++)
      outcomes.push((await manager.save({ state: {}, epoch, metrics: { acc: epoch } })).status);
    expect(outcomes).toEqual(['skipped', 'saved', 'skipped', 'saved']); // every 2 epochs
    expect((await manager.list()).map((r) => r.epoch)).toEqual([4]); // keep the latest 1 (the best too)
    await manager.close();
    const bad = () =>
      loadSettings({ env: {}, cwd: folder({ 'ckpt.config.yaml': 'checkpoints:\n  retention:\n    keepLast: -1\n' }) });
    expect(bad).toThrow(/`checkpoints.retention.keepLast` must be a whole number of 0 or more/);
  });
});
