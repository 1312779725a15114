import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { isDatabaseUrl } from '../tracking/url.js';
import type { SettingType } from './table.js';

/** A path setting made absolute: `~/` is the home folder, else relative to `base`. */
export function absolutePath(base: string, value: string): string {
  return value === '~' || value.startsWith('~/') ? join(homedir(), value.slice(1)) : resolve(base, value);
}

/**
 * A setting's value as used: paths absolute against `base`; a database URL
 * kept as written, except that a relative `sqlite://` path is resolved too.
 */
export function settingValue<T>(type: SettingType, base: string, value: T): T | string {
  if (typeof value !== 'string') return value;
  if (type === 'path') return absolutePath(base, value);
  if (type !== 'database') return value;
  if (/^sqlite:\/\//i.test(value)) {
    const rest = value.slice('sqlite://'.length);
    return rest === ':memory:' || isAbsolute(rest) ? value : `sqlite://${absolutePath(base, rest)}`;
  }
  return isDatabaseUrl(value) || value === ':memory:' ? value : absolutePath(base, value);
}
