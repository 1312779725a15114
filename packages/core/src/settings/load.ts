/**
 * One loader, one precedence for every setting: flags (or code) >
 * environment variables > config files > defaults. The config file is the
 * one named (`configFile`, `CKPT_CONFIG`) or `ckpt.config.yaml|yml|json` in
 * the working folder; below it, the resolver's own file (`CKPT_RESOLVER_CONFIG`).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FormatError, InvalidArgumentError } from '../errors.js';
import { type Layer, readResolverFile, readSettingsFile } from './file.js';
import { settingValue } from './paths.js';
import { SETTINGS, type SettingKey, type SettingRow } from './table.js';

export const CONFIG_NAMES = ['ckpt.config.yaml', 'ckpt.config.yml', 'ckpt.config.json'];

export interface BucketSettings {
  /** Whether missing files are fetched from the bucket. */
  enabled: boolean;
  name: string;
  /** Prepended to names: `modelZoo/` + `convnext.pth`. */
  prefix: string;
  /** The S3 endpoint: B2's is `https://s3.<region>.backblazeb2.com`; any S3-compatible store works. */
  endpoint?: string;
  /** Default: taken from a B2 endpoint, else `us-east-1`. */
  region?: string;
  /** Path-style URLs (`endpoint/bucket/key`), which local servers such as moto and MinIO need. */
  forcePathStyle?: boolean;
}

export interface ResolverSettings {
  cacheDir: string;
  /** Never touch the network; a file that is not cached is a NotFoundError. */
  offline: boolean;
  bucket: BucketSettings;
}

export interface Settings {
  /** The config file read, if any. */
  source: string | undefined;
  checkpoints: {
    directory: string;
    experiment: string | undefined;
    format: 'safetensors' | 'pytorch';
    monitor: string;
    mode: 'min' | 'max';
    /** When to save (every setting given must agree); see `managerOptions`. */
    save: { everyEpochs?: number; everySteps?: number; everySeconds?: number; bestOnly?: boolean };
    /** What retention keeps (what any setting keeps stays). */
    retention: { keepLast?: number; keepBest?: number };
    integrity: { verifyOnLoad: boolean; fsync: boolean };
    backup: 'none' | 'best' | 'all';
    compression: 'none' | 'gzip';
  };
  tracker: { database: string; project: string };
  resolver: ResolverSettings;
  /** Where each setting's value came from: `flag`, `env CKPT_DIR`, `file <path>` or `default`. */
  origins: Record<SettingKey, string>;
}

export type SettingValues = Partial<Record<SettingKey, string | boolean | number | undefined>>;

export interface LoadSettingsOptions {
  /** Values given by flags or in code: they win over everything. Undefined ones hide nothing. */
  flags?: SettingValues;
  /** The config file (default: `CKPT_CONFIG`, else `ckpt.config.*` in `cwd`); `false` reads none. */
  configFile?: string | false;
  /** The resolver's own file (default: `CKPT_RESOLVER_CONFIG`); `false` reads none. */
  resolverFile?: string | false;
  /** The environment to read (default `process.env`); pass `{}` to read none. */
  env?: Record<string, string | undefined>;
  /** Relative paths from flags and the environment are taken from here (default `process.cwd()`). */
  cwd?: string;
}

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

/** One variable's value for `row`, or undefined when it is unset or empty. */
function fromVariable(
  row: SettingRow,
  name: string,
  text: string | undefined,
  cwd: string,
): string | boolean | number | undefined {
  if (text === undefined || text === '') return undefined;
  if (row.type === 'boolean') {
    const word = text.trim().toLowerCase();
    if (TRUE.includes(word)) return true;
    if (FALSE.includes(word)) return false;
    throw new InvalidArgumentError(`${name}=${JSON.stringify(text)} is not a switch`, {
      expected: `one of ${[...TRUE, ...FALSE].join(', ')}`,
    });
  }
  if (row.type === 'count') {
    if (!/^\d{1,15}$/.test(text.trim())) {
      throw new InvalidArgumentError(`${name}=${JSON.stringify(text)} is not a whole number`, {
        expected: '0, 1, 2, ...',
      });
    }
    return Number(text.trim());
  }
  if (Array.isArray(row.type) && !row.type.includes(text)) {
    throw new InvalidArgumentError(`${name}=${JSON.stringify(text)} is not allowed`, {
      expected: `one of ${row.type.join(', ')}`,
    });
  }
  return settingValue(row.type, cwd, text) as string;
}

function findConfigFile(options: LoadSettingsOptions, env: Record<string, string | undefined>, cwd: string) {
  if (options.configFile === false) return undefined;
  const named = options.configFile ?? env.CKPT_CONFIG;
  if (named) {
    const path = resolve(cwd, named);
    if (!existsSync(path)) throw new InvalidArgumentError(`the config file ${path} does not exist`, { path });
    return path;
  }
  return CONFIG_NAMES.map((name) => join(cwd, name)).find((path) => existsSync(path));
}

/** Every setting, each from the highest source that has it. */
export function loadSettings(options: LoadSettingsOptions = {}): Settings {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const source = findConfigFile(options, env, cwd);
  const resolverFile = options.resolverFile === false ? undefined : (options.resolverFile ?? env.CKPT_RESOLVER_CONFIG);
  // Lowest first: each source overrides the ones before it.
  const files: Array<[string, Layer]> = [];
  if (resolverFile) files.push([resolve(cwd, resolverFile), readResolverFile(resolve(cwd, resolverFile))]);
  if (source) files.push([source, readSettingsFile(source)]);

  const values = new Map<SettingKey, string | boolean | number | undefined>();
  const origins = Object.create(null) as Record<SettingKey, string>;
  for (const row of SETTINGS as readonly SettingRow[]) {
    const key = row.key as SettingKey;
    let value: string | boolean | number | undefined = row.default;
    let origin = 'default';
    value = settingValue(row.type, cwd, value);
    for (const [file, layer] of files) {
      if (layer.has(key)) [value, origin] = [layer.get(key), `file ${file}`];
    }
    const variable = row.env.find((name) => env[name] !== undefined && env[name] !== '');
    if (variable) [value, origin] = [fromVariable(row, variable, env[variable], cwd), `env ${variable}`];
    const flag = options.flags?.[key];
    if (flag !== undefined) {
      const checked = settingValue(row.type, cwd, row.type === 'path' || row.type === 'database' ? String(flag) : flag);
      [value, origin] = [checked, 'flag'];
    }
    values.set(key, value);
    origins[key] = origin;
  }
  return { source, ...assemble(values), origins };
}

/** The nested object from `section.key` values. */
function assemble(
  values: Map<SettingKey, string | boolean | number | undefined>,
): Omit<Settings, 'source' | 'origins'> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [key, value] of values) {
    const parts = key.split('.');
    let node: Record<string, unknown> = out;
    for (const part of parts.slice(0, -1)) {
      node[part] ??= {}; // a section with no value set is still there, empty
      node = node[part] as Record<string, unknown>;
    }
    if (value !== undefined) node[parts.at(-1) as string] = value;
  }
  if (!out.checkpoints || !out.tracker || !out.resolver) throw new FormatError('the settings table lost a section');
  return out as unknown as Omit<Settings, 'source' | 'origins'>;
}
