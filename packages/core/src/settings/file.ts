/**
 * Config files: `ckpt.config.yaml` (or `.yml`, `.json`) with sections named
 * as the settings table names them, checked key by key; and the resolver's
 * own file (`CKPT_RESOLVER_CONFIG`): seed 002's `ENV.INPUT` layout or the
 * resolver section on its own. Relative paths are taken from the file's folder.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseDocument } from 'yaml';
import { FormatError, InvalidArgumentError } from '../errors.js';
import { settingValue } from './paths.js';
import { SETTINGS, type SettingKey, type SettingRow } from './table.js';

/** Values by setting, from one source. */
export type Layer = Map<SettingKey, string | boolean | number>;

const ROWS: ReadonlyMap<string, SettingRow> = new Map(SETTINGS.map((row) => [row.key, row]));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError(`cannot read ${what} ${path}: ${(error as Error).message}`, { path, cause: error });
  }
  const json = /\.json$/i.test(path);
  try {
    return json ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new FormatError(`${path} is not valid ${json ? 'JSON' : 'YAML'}: ${(error as Error).message}`, {
      path,
      cause: error,
    });
  }
}

/**
 * YAML's warnings (an unknown `!tag`, say) refuse the file like its errors:
 * a config that does not mean what it says is wrong, and the library would
 * otherwise print them as process warnings.
 */
function parseYaml(text: string): unknown {
  const document = parseDocument(text, { logLevel: 'silent' });
  const [problem] = [...document.errors, ...document.warnings];
  if (problem) throw problem;
  return document.toJS();
}

/** Checks one value against its row; paths are made absolute from `base`. */
export function checkValue(row: SettingRow, value: unknown, where: string, path?: string): string | boolean | number {
  const { type } = row;
  if (Array.isArray(type)) {
    if (typeof value !== 'string' || !type.includes(value)) {
      throw new FormatError(`${where}: \`${row.key}\` must be one of ${type.join(', ')}`, {
        ...(path ? { path } : {}),
        found: JSON.stringify(value),
      });
    }
    return value;
  }
  if (type === 'count') {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new FormatError(`${where}: \`${row.key}\` must be a whole number of 0 or more`, {
        ...(path ? { path } : {}),
        found: JSON.stringify(value),
      });
    }
    return value;
  }
  const want = type === 'path' || type === 'database' ? 'string' : type;
  if (typeof value !== want) {
    throw new FormatError(`${where}: \`${row.key}\` must be a ${want}`, {
      ...(path ? { path } : {}),
      found: JSON.stringify(value),
    });
  }
  return value as string | boolean;
}

/**
 * The settings in `value`, a mapping whose keys start at `prefix` (`''` for
 * a whole config file, `resolver.` for the resolver's section). Unknown keys
 * are refused, naming the key and what it may be. Walked with a stack: a
 * hostile file cannot nest deep enough to matter.
 */
function settingsOf(value: unknown, prefix: string, file: string): Layer {
  const layer: Layer = new Map();
  const base = dirname(file);
  const stack: Array<[unknown, string]> = [[value, prefix]];
  while (stack.length > 0) {
    const [node, at] = stack.pop() as [unknown, string];
    const where = at.replace(/\.$/, '') || 'the file';
    if (!isObject(node)) throw new FormatError(`${file}: ${where} must be a mapping`, { path: file });
    for (const [key, child] of Object.entries(node)) {
      const full = at + key;
      const row = ROWS.get(full);
      if (row) {
        const checked = checkValue(row, child, file, file);
        layer.set(row.key as SettingKey, settingValue(row.type, base, checked));
        continue;
      }
      const below = SETTINGS.filter((r) => r.key.startsWith(`${full}.`));
      if (below.length === 0) {
        const here = [
          ...new Set(
            SETTINGS.filter((r) => r.key.startsWith(at)).map((r) => at + r.key.slice(at.length).split('.')[0]),
          ),
        ];
        throw new FormatError(`${file}: unknown setting \`${full}\``, {
          path: file,
          expected: `one of ${here.join(', ')}`,
        });
      }
      stack.push([child, `${full}.`]);
    }
  }
  return layer;
}

/** A `ckpt.config.yaml` (or `.yml`, `.json`): sections `checkpoints`, `tracker`, `resolver`. An empty file is no settings. */
export function readSettingsFile(path: string): Layer {
  const value = parseFile(path, 'the config file');
  if (value === null || value === undefined) return new Map();
  return settingsOf(value, '', path);
}

/** Seed 002's keys under `ENV.INPUT`, and where they go. Other keys in a seed file are its own business. */
const SEED_002: ReadonlyArray<[string[], SettingKey]> = [
  [['CACHE_DIR'], 'resolver.cacheDir'],
  [['OFFLINE'], 'resolver.offline'],
  [['BUCKET', 'ENABLED'], 'resolver.bucket.enabled'],
  [['BUCKET', 'NAME'], 'resolver.bucket.name'],
  [['BUCKET', 'PATH_PREFIX'], 'resolver.bucket.prefix'],
  [['BUCKET', 'ENDPOINT'], 'resolver.bucket.endpoint'],
  [['BUCKET', 'REGION'], 'resolver.bucket.region'],
];

/** The resolver's own file: seed 002's `ENV.INPUT.{CACHE_DIR, BUCKET.{ENABLED, NAME, PATH_PREFIX}}`, or `{ cacheDir, bucket: {...} }`. */
export function readResolverFile(path: string): Layer {
  const value = parseFile(path, 'the resolver config');
  if (!isObject(value)) throw new FormatError(`the resolver config ${path} is not a mapping`, { path });
  const input = isObject(value.ENV) && isObject(value.ENV.INPUT) ? value.ENV.INPUT : undefined;
  if (!input) return settingsOf(value, 'resolver.', path);
  const layer: Layer = new Map();
  for (const [names, key] of SEED_002) {
    let node: unknown = input;
    for (const name of names) node = isObject(node) && Object.hasOwn(node, name) ? node[name] : undefined;
    if (node === undefined || node === null) continue;
    const row = ROWS.get(key) as SettingRow;
    const checked = checkValue(row, node, path, path);
    layer.set(key, settingValue(row.type, dirname(path), checked));
  }
  return layer;
}
