/**
 * Where checkpoints are looked for: the cache folder and the bucket. One
 * precedence, as everywhere in ckpt: what the caller passes in code (a CLI
 * flag) > environment variables > a YAML or JSON file (seed 002's
 * `ENV.INPUT` layout or a flat one) > defaults.
 * Credentials come only from the environment or a credentials file, and are
 * never part of an error message or a log line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { FormatError, InvalidArgumentError } from '@ckpt/core';
import { parse as parseYaml } from 'yaml';

export interface BucketConfig {
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

export interface ResolverConfig {
  cacheDir: string;
  bucket: BucketConfig;
  /** Never touch the network; a file that is not cached is a NotFoundError. */
  offline: boolean;
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

type Env = Record<string, string | undefined>;

/** Settings from one source (code, a file, the environment): any may be missing. */
export interface PartialConfig {
  cacheDir?: string;
  offline?: boolean;
  bucket: Partial<BucketConfig>;
}

const DEFAULT_CACHE = join(homedir(), '.cache', 'ckpt', 'checkpoints');

function truthy(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  return ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads a config file: seed 002's `ENV.INPUT.{CACHE_DIR, BUCKET.{ENABLED, NAME, PATH_PREFIX}}`, or `{ cacheDir, bucket: { ... } }`. */
export function readConfigFile(path: string): PartialConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError(`cannot read the resolver config ${path}: ${(error as Error).message}`, { path });
  }
  let value: unknown;
  try {
    value = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new FormatError(`the resolver config ${path} is not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}`, {
      path,
      cause: error,
    });
  }
  if (!isObject(value)) throw new FormatError(`the resolver config ${path} is not a mapping`, { path });
  const input = isObject(value.ENV) && isObject(value.ENV.INPUT) ? value.ENV.INPUT : undefined;
  if (input) {
    const bucket = isObject(input.BUCKET) ? input.BUCKET : {};
    return {
      ...(typeof input.CACHE_DIR === 'string' ? { cacheDir: input.CACHE_DIR } : {}),
      ...(typeof input.OFFLINE === 'boolean' ? { offline: input.OFFLINE } : {}),
      bucket: {
        ...(typeof bucket.ENABLED === 'boolean' ? { enabled: bucket.ENABLED } : {}),
        ...(typeof bucket.NAME === 'string' ? { name: bucket.NAME } : {}),
        ...(typeof bucket.PATH_PREFIX === 'string' ? { prefix: bucket.PATH_PREFIX } : {}),
        ...(typeof bucket.ENDPOINT === 'string' ? { endpoint: bucket.ENDPOINT } : {}),
        ...(typeof bucket.REGION === 'string' ? { region: bucket.REGION } : {}),
      },
    };
  }
  const bucket = isObject(value.bucket) ? (value.bucket as Partial<BucketConfig>) : {};
  return {
    ...(typeof value.cacheDir === 'string' ? { cacheDir: value.cacheDir } : {}),
    ...(typeof value.offline === 'boolean' ? { offline: value.offline } : {}),
    bucket,
  };
}

/** What the environment says: CKPT_CACHE_DIR, CKPT_BUCKET_ENABLED, CKPT_BUCKET_NAME, CKPT_BUCKET_PREFIX, CKPT_S3_ENDPOINT, CKPT_S3_REGION, CKPT_OFFLINE. */
export function configFromEnv(env: Env = process.env): PartialConfig {
  const bucket: Partial<BucketConfig> = {};
  const enabled = truthy(env.CKPT_BUCKET_ENABLED);
  if (enabled !== undefined) bucket.enabled = enabled;
  if (env.CKPT_BUCKET_NAME) bucket.name = env.CKPT_BUCKET_NAME;
  if (env.CKPT_BUCKET_PREFIX !== undefined) bucket.prefix = env.CKPT_BUCKET_PREFIX;
  if (env.CKPT_S3_ENDPOINT) bucket.endpoint = env.CKPT_S3_ENDPOINT;
  if (env.CKPT_S3_REGION) bucket.region = env.CKPT_S3_REGION;
  const offline = truthy(env.CKPT_OFFLINE) ?? truthy(env.HF_HUB_OFFLINE);
  return {
    ...(env.CKPT_CACHE_DIR ? { cacheDir: env.CKPT_CACHE_DIR } : {}),
    ...(offline !== undefined ? { offline } : {}),
    bucket,
  };
}

export interface ConfigInput {
  /** Code's settings (a CLI flag, say): they win over the environment and files. */
  cacheDir?: string;
  bucket?: Partial<BucketConfig>;
  offline?: boolean;
  /** A YAML or JSON file (default: `CKPT_RESOLVER_CONFIG` when set). */
  configFile?: string;
  /** Settings the caller read from its own config file: ranked with files, below the environment. */
  fileSettings?: PartialConfig;
  /** The environment to read (default `process.env`); pass `{}` to ignore it. */
  env?: Env;
}

/** Drops undefined values, so that a missing setting never hides a lower layer's. */
function defined<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Merges code > environment > file > defaults, and checks the result. */
export function resolveConfig(input: ConfigInput = {}): ResolverConfig {
  const env = input.env ?? process.env;
  const file = input.configFile ?? env.CKPT_RESOLVER_CONFIG;
  const fromFile: PartialConfig = file ? readConfigFile(file) : { bucket: {} };
  const fromEnv = configFromEnv(env);
  // Lowest first: each layer overrides the ones before it.
  const layers: PartialConfig[] = [
    fromFile,
    input.fileSettings ?? { bucket: {} },
    fromEnv,
    { cacheDir: input.cacheDir, offline: input.offline, bucket: input.bucket ?? {} },
  ];
  const bucket: Partial<BucketConfig> = Object.assign({}, ...layers.map((layer) => defined(layer.bucket)));
  const pick = <K extends 'cacheDir' | 'offline'>(key: K): PartialConfig[K] =>
    layers.reduce<PartialConfig[K]>((found, layer) => layer[key] ?? found, undefined);
  const config: ResolverConfig = {
    cacheDir: resolve(pick('cacheDir') ?? DEFAULT_CACHE),
    offline: pick('offline') ?? false,
    bucket: {
      enabled: bucket.enabled ?? false,
      name: bucket.name ?? '',
      prefix: bucket.prefix ?? '',
      ...(bucket.endpoint ? { endpoint: bucket.endpoint } : {}),
      ...(bucket.region ? { region: bucket.region } : {}),
      ...(bucket.forcePathStyle !== undefined ? { forcePathStyle: bucket.forcePathStyle } : {}),
    },
  };
  if (config.bucket.enabled && !config.bucket.name) {
    throw new InvalidArgumentError('the bucket is enabled but has no name', {
      expected: 'bucket.name or CKPT_BUCKET_NAME',
    });
  }
  return config;
}

/**
 * Credentials: B2_APPLICATION_KEY_ID / B2_APPLICATION_KEY, else
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, else a credentials file
 * (CKPT_CREDENTIALS_FILE, default ~/.config/ckpt/credentials) holding
 * `key_id = ...` and `key = ...` lines (or JSON `{ "keyId", "key" }`).
 * Returns undefined when there are none (anonymous access).
 */
export function loadCredentials(env: Env = process.env): Credentials | undefined {
  if (env.B2_APPLICATION_KEY_ID && env.B2_APPLICATION_KEY) {
    return { accessKeyId: env.B2_APPLICATION_KEY_ID, secretAccessKey: env.B2_APPLICATION_KEY };
  }
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    return { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
  }
  const path = env.CKPT_CREDENTIALS_FILE ?? join(homedir(), '.config', 'ckpt', 'credentials');
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  const fail = () =>
    new FormatError(`the credentials file ${path} has no key_id and key`, {
      path,
      expected: 'lines `key_id = ...` and `key = ...`, or JSON { "keyId", "key" }',
    });
  if (text.trim().startsWith('{')) {
    let value: { keyId?: unknown; key?: unknown };
    try {
      value = JSON.parse(text);
    } catch {
      throw fail();
    }
    if (typeof value.keyId !== 'string' || typeof value.key !== 'string') throw fail();
    return { accessKeyId: value.keyId, secretAccessKey: value.key };
  }
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*([A-Za-z_]+)\s*[=:]\s*(.*?)\s*$/.exec(line);
    if (match) fields.set((match[1] as string).toLowerCase(), match[2] as string);
  }
  const id = fields.get('key_id') ?? fields.get('application_key_id') ?? fields.get('aws_access_key_id');
  const key = fields.get('key') ?? fields.get('application_key') ?? fields.get('aws_secret_access_key');
  if (!id || !key) throw fail();
  return { accessKeyId: id, secretAccessKey: key };
}
