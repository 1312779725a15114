/**
 * Naming a tracking database: a path or `sqlite://path` for SQLite,
 * `postgres://user:password@host:port/db` (or `postgresql://`), and
 * `mysql://…` (or `mariadb://`). Credentials never leave this module
 * unmasked: `maskCredentials` is what every message and log prints.
 */
import { isAbsolute, resolve } from 'node:path';
import { DatabaseError } from '../errors.js';

export type DatabaseKind = 'sqlite' | 'postgres' | 'mysql';

export interface DatabaseLocation {
  kind: DatabaseKind;
  /** For SQLite, the absolute file path (or `:memory:`); otherwise the URL as given. */
  target: string;
  /** Safe to print: the password replaced by `***`. */
  display: string;
  /** The package whose `connect` opens it. */
  packageName: string;
}

const SCHEMES: Record<string, DatabaseKind> = {
  'sqlite:': 'sqlite',
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
};

const PACKAGES: Record<DatabaseKind, string> = {
  sqlite: '@ckpt/tracker-sqlite',
  postgres: '@ckpt/tracker-postgres',
  mysql: '@ckpt/tracker-mysql',
};

/** `scheme://user:secret@` → `scheme://user:***@`, anywhere in a text (messages, logs). */
export function maskCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@/?#\s]*@/gi, '$1:***@');
}

/** Whether `text` names a database by URL (as opposed to a file path). */
export function isDatabaseUrl(text: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
}

/** Reads a database name (a path or a URL); paths are resolved against `cwd`. */
export function parseDatabaseLocation(text: string, cwd: string = process.cwd()): DatabaseLocation {
  if (typeof text !== 'string' || text.trim() === '') {
    throw new DatabaseError('the tracking database must be a path or a URL', { code: 'CKPT_DATABASE_URL' });
  }
  if (!isDatabaseUrl(text)) {
    const target = text === ':memory:' ? text : resolve(cwd, text);
    return { kind: 'sqlite', target, display: target, packageName: PACKAGES.sqlite };
  }
  const display = maskCredentials(text);
  const scheme = `${text.slice(0, text.indexOf(':')).toLowerCase()}:`;
  const kind = SCHEMES[scheme];
  if (!kind) {
    throw new DatabaseError(`unknown database URL scheme in ${display}`, {
      code: 'CKPT_DATABASE_URL',
      expected: 'a path, sqlite://, postgres://, postgresql://, mysql:// or mariadb://',
      found: scheme,
    });
  }
  if (kind === 'sqlite') {
    // sqlite:///abs/path, sqlite://relative/path
    const rest = decodeURIComponent(text.slice('sqlite://'.length));
    if (rest === '') throw new DatabaseError('sqlite:// needs a file path', { code: 'CKPT_DATABASE_URL' });
    const target = rest === ':memory:' ? rest : isAbsolute(rest) ? rest : resolve(cwd, rest);
    return { kind, target, display: target, packageName: PACKAGES.sqlite };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new DatabaseError(`malformed database URL ${display}`, {
      code: 'CKPT_DATABASE_URL',
      expected: `${scheme}//user:password@host:port/database`,
    });
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (database === '' || database.includes('/')) {
    throw new DatabaseError(`the database URL ${display} names no database`, {
      code: 'CKPT_DATABASE_URL',
      expected: `${scheme}//user@host/database`,
    });
  }
  if (url.hostname === '' && !url.searchParams.get('host') && !url.searchParams.get('socket')) {
    throw new DatabaseError(`the database URL ${display} names no host`, {
      code: 'CKPT_DATABASE_URL',
      expected: `${scheme}//user@host/database, or ?host=/path/to/socket-folder`,
    });
  }
  return { kind, target: text, display, packageName: PACKAGES[kind] };
}
