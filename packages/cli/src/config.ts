/**
 * The CLI's settings, with one precedence for every setting: flags >
 * environment variables > `ckpt.config.yaml` (or `.yml` / `.json`, found in
 * the working folder or named by `--config` / `CKPT_CONFIG`) > built-in
 * defaults. The resolver's settings are handed to the resolver as the file
 * layer and the flag, and it applies the same order with its own variables
 * (`CKPT_OFFLINE`, `CKPT_CACHE_DIR`, ...). Unknown keys and wrong types are
 * refused with the key's path in the message.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { FormatError, InvalidArgumentError } from '@ckpt/core';
import { parse as parseYaml } from 'yaml';

export interface CliConfig {
  /** The file the settings came from, if any. */
  source: string | undefined;
  checkpoints: {
    /** The manager's root folder; each experiment is a subfolder. */
    directory: string;
    /** The experiment commands act on by default. */
    experiment: string | undefined;
    /** Format of new checkpoints: `safetensors` or `pytorch`. */
    format: 'safetensors' | 'pytorch';
    /** The metric that ranks checkpoints, and which way is better. */
    monitor: string;
    mode: 'min' | 'max';
  };
  tracker: { database: string; project: string };
  resolver: {
    /** `--offline`, when given: it wins over CKPT_OFFLINE and the file. */
    offlineFlag: boolean | undefined;
    /** The config file's `resolver` section (paths resolved): below the environment. */
    file: {
      cacheDir?: string;
      offline?: boolean;
      bucket: {
        enabled?: boolean;
        name?: string;
        prefix?: string;
        endpoint?: string;
        region?: string;
        forcePathStyle?: boolean;
      };
    };
  };
}

export const CONFIG_NAMES = ['ckpt.config.yaml', 'ckpt.config.yml', 'ckpt.config.json'];

/** Flags that override the file and the environment. */
export interface ConfigFlags {
  config?: string;
  dir?: string;
  experiment?: string;
  database?: string;
  offline?: boolean;
}

type Shape = { [key: string]: 'string' | 'boolean' | readonly string[] | Shape };

const SHAPE: Shape = {
  checkpoints: {
    directory: 'string',
    experiment: 'string',
    format: ['safetensors', 'pytorch'],
    monitor: 'string',
    mode: ['min', 'max'],
  },
  tracker: { database: 'string', project: 'string' },
  resolver: {
    cacheDir: 'string',
    offline: 'boolean',
    bucket: {
      enabled: 'boolean',
      name: 'string',
      prefix: 'string',
      endpoint: 'string',
      region: 'string',
      forcePathStyle: 'boolean',
    },
  },
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks `value` against `shape`, naming the first offending key. */
function validate(value: unknown, shape: Shape, path: string, file: string): void {
  if (!isObject(value)) throw new FormatError(`${file}: ${path || 'the file'} must be a mapping`, { path: file });
  for (const [key, child] of Object.entries(value)) {
    const where = path ? `${path}.${key}` : key;
    const expected = shape[key];
    if (expected === undefined) {
      throw new FormatError(`${file}: unknown setting \`${where}\``, {
        path: file,
        expected: `one of ${Object.keys(shape)
          .map((k) => (path ? `${path}.${k}` : k))
          .join(', ')}`,
      });
    }
    if (Array.isArray(expected)) {
      if (!expected.includes(child as string)) {
        throw new FormatError(`${file}: \`${where}\` must be one of ${expected.join(', ')}`, {
          path: file,
          found: JSON.stringify(child),
        });
      }
    } else if (typeof expected === 'string') {
      if (typeof child !== expected) {
        throw new FormatError(`${file}: \`${where}\` must be a ${expected}`, {
          path: file,
          found: JSON.stringify(child),
        });
      }
    } else {
      validate(child, expected as Shape, where, file);
    }
  }
}

function findConfigFile(flags: ConfigFlags, env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  const named = flags.config ?? env.CKPT_CONFIG;
  if (named) {
    const path = resolve(cwd, named);
    if (!existsSync(path)) throw new InvalidArgumentError(`the config file ${path} does not exist`, { path });
    return path;
  }
  return CONFIG_NAMES.map((name) => join(cwd, name)).find((path) => existsSync(path));
}

function readConfig(path: string): Record<string, unknown> {
  const text = readFileSync(path, 'utf8');
  let value: unknown;
  try {
    value = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new FormatError(
      `${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
      {
        path,
      },
    );
  }
  if (value === null || value === undefined) return {};
  validate(value, SHAPE, '', path);
  return value as Record<string, unknown>;
}

/** Settings for one run of the CLI. Relative paths are taken from the config file's folder, else `cwd`. */
export function loadConfig(
  flags: ConfigFlags = {},
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): CliConfig {
  const source = findConfigFile(flags, env, cwd);
  const file = source ? readConfig(source) : {};
  const base = source ? dirname(source) : cwd;
  const section = (name: string) => (isObject(file[name]) ? (file[name] as Record<string, unknown>) : {});
  const checkpoints = section('checkpoints');
  const tracker = section('tracker');
  const resolver = section('resolver');
  const bucket = isObject(resolver.bucket) ? resolver.bucket : {};
  const str = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const path = (value: string | undefined) => (value === undefined ? undefined : resolve(base, value));

  return {
    source,
    checkpoints: {
      directory: resolve(cwd, flags.dir ?? env.CKPT_DIR ?? path(str(checkpoints.directory)) ?? 'checkpoints'),
      experiment: flags.experiment ?? env.CKPT_EXPERIMENT ?? str(checkpoints.experiment),
      format: (str(checkpoints.format) as 'safetensors' | 'pytorch' | undefined) ?? 'safetensors',
      monitor: str(checkpoints.monitor) ?? 'val_loss',
      mode: (str(checkpoints.mode) as 'min' | 'max' | undefined) ?? 'min',
    },
    tracker: {
      database: resolve(cwd, flags.database ?? env.CKPT_DATABASE ?? path(str(tracker.database)) ?? 'ckpt.db'),
      project: str(tracker.project) ?? 'default',
    },
    resolver: {
      offlineFlag: flags.offline,
      file: {
        ...(typeof resolver.cacheDir === 'string' ? { cacheDir: path(resolver.cacheDir) } : {}),
        ...(typeof resolver.offline === 'boolean' ? { offline: resolver.offline } : {}),
        bucket: { ...(bucket as CliConfig['resolver']['file']['bucket']) },
      },
    },
  };
}
