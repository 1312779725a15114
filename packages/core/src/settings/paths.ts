import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** A path setting made absolute: `~/` is the home folder, else relative to `base`. */
export function absolutePath(base: string, value: string): string {
  return value === '~' || value.startsWith('~/') ? join(homedir(), value.slice(1)) : resolve(base, value);
}
