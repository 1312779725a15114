/**
 * The resolver's settings: the cache folder, the bucket, offline mode. The
 * resolver takes them already resolved and reads no environment or file
 * itself: `loadSettings()` from @ckpt/core does that for every package, with
 * one precedence (flags > environment > files > defaults). What is not given
 * here takes the settings table's default.
 */
import {
  type BucketSettings,
  type Credentials,
  InvalidArgumentError,
  loadCredentials,
  loadSettings,
  type ResolverSettings,
  SETTINGS,
  type SettingKey,
} from '@ckpt/core';

export type BucketConfig = BucketSettings;
export type ResolverConfig = ResolverSettings;
export type { Credentials };

/** Settings given in code: any may be missing. */
export interface PartialConfig {
  cacheDir?: string;
  offline?: boolean;
  bucket: Partial<BucketConfig>;
}

/** The resolver settings given in code, each missing one filled from the table's defaults; checked. */
export function resolverConfig(input: { cacheDir?: string; offline?: boolean; bucket?: Partial<BucketConfig> } = {}) {
  const defaults = loadSettings({ env: {}, configFile: false, resolverFile: false }).resolver;
  const defined = <T extends object>(value: T | undefined) =>
    Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  const config: ResolverConfig = {
    ...defaults,
    ...defined({ cacheDir: input.cacheDir, offline: input.offline }),
    bucket: { ...defaults.bucket, ...defined(input.bucket) },
  };
  if (config.bucket.enabled && !config.bucket.name) {
    throw new InvalidArgumentError('the bucket is enabled but has no name', {
      expected: 'resolver.bucket.name in ckpt.config.yaml, CKPT_BUCKET_NAME, or `bucket.name`',
    });
  }
  return config;
}

const RESOLVER_KEYS = SETTINGS.map((row) => row.key).filter((key) => key.startsWith('resolver.'));

/** The resolver settings that came from an origin `accept` takes. */
function partial(settings: ReturnType<typeof loadSettings>, accept: (origin: string) => boolean): PartialConfig {
  const out: PartialConfig = { bucket: {} };
  for (const key of RESOLVER_KEYS) {
    if (!accept(settings.origins[key as SettingKey])) continue;
    const field = key.slice('resolver.'.length);
    if (field.startsWith('bucket.')) {
      const name = field.slice('bucket.'.length) as keyof BucketConfig;
      (out.bucket as Record<string, unknown>)[name] = settings.resolver.bucket[name];
    } else {
      (out as unknown as Record<string, unknown>)[field] = settings.resolver[field as 'cacheDir' | 'offline'];
    }
  }
  return out;
}

/** @deprecated Use `loadSettings().resolver` from @ckpt/core; kept for one release. */
export function configFromEnv(env: Record<string, string | undefined> = process.env): PartialConfig {
  return partial(loadSettings({ env, configFile: false, resolverFile: false }), (o) => o.startsWith('env '));
}

/** @deprecated Use `readResolverFile` (or `loadSettings`) from @ckpt/core; kept for one release. */
export function readConfigFile(path: string): PartialConfig {
  return partial(loadSettings({ env: {}, configFile: false, resolverFile: path }), (o) => o.startsWith('file '));
}

export interface ConfigInput {
  cacheDir?: string;
  bucket?: Partial<BucketConfig>;
  offline?: boolean;
  /** The resolver's own YAML or JSON file (default: `CKPT_RESOLVER_CONFIG`). */
  configFile?: string;
  /** The environment to read (default `process.env`). */
  env?: Record<string, string | undefined>;
}

/**
 * @deprecated Use `resolverConfig(loadSettings({ flags }).resolver)`; kept for
 * one release. Code > environment > the resolver's file > defaults.
 */
export function resolveConfig(input: ConfigInput = {}): ResolverConfig {
  const flags: Record<string, string | boolean | undefined> = {
    'resolver.cacheDir': input.cacheDir,
    'resolver.offline': input.offline,
  };
  for (const [name, value] of Object.entries(input.bucket ?? {})) flags[`resolver.bucket.${name}`] = value;
  const settings = loadSettings({
    env: input.env ?? process.env,
    configFile: false,
    ...(input.configFile ? { resolverFile: input.configFile } : {}),
    flags,
  });
  return resolverConfig(settings.resolver);
}

/** @deprecated Moved to @ckpt/core (`loadCredentials`); kept here for one release. */
export { loadCredentials };
