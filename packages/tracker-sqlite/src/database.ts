/** Opening a tracking database: pragmas for several processes at once, and the schema. */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseError, FormatError, NativeErrorCode, nativeError } from '@ckpt/core';
import Database from 'better-sqlite3';
import { migrate } from './schema.js';

export interface DatabaseOptions {
  /** How long a writer waits for another process's transaction (default 10 s). */
  busyTimeoutMs?: number;
  /** Open an existing database read-only. */
  readonly?: boolean;
}

export interface OpenedDatabase {
  db: Database.Database;
  path: string;
  /** The schema version the file was at before opening (0 for a new file). */
  upgradedFrom: number;
}

/**
 * A better-sqlite3 failure as ckpt's typed error naming the database file: a
 * full disk, a read-only or denied file, a damaged database, an I/O error.
 * Anything else (ckpt's own errors included) passes through unchanged.
 */
export function sqliteFailure(error: unknown, path: string): unknown {
  if (!(error instanceof Database.SqliteError)) return error;
  const { code } = error;
  const cause = { cause: error };
  if (code === 'SQLITE_FULL') return nativeError(NativeErrorCode.NoSpace, { path }, cause);
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH') {
    return nativeError(NativeErrorCode.PermissionDenied, { path, op: 'write to' }, cause);
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return nativeError(NativeErrorCode.Io, { path, op: 'read or write', message: error.message }, cause);
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new FormatError(`${path} is not a sound SQLite database: ${error.message}`, { path, ...cause });
  }
  return new DatabaseError(`the tracking database ${path}: ${error.message} (${code})`, { path, ...cause });
}

/** Sleeps without yielding: better-sqlite3 is synchronous, and so is opening. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/**
 * Runs `step` again while it fails with SQLITE_BUSY, up to `timeoutMs`. Some
 * statements of the open path return SQLITE_BUSY at once instead of calling
 * the busy handler: switching a new file to WAL takes an exclusive lock
 * without waiting, so two processes creating one database at once could see
 * `database is locked` despite the busy timeout. Opening waits like every
 * other write.
 */
function retryWhileBusy<T>(timeoutMs: number, step: () => T): T {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    try {
      return step();
    } catch (error) {
      if (!isBusy(error) || Date.now() >= deadline) throw error;
      sleepSync(Math.min(delay, Math.max(1, deadline - Date.now())));
    }
  }
}

/**
 * Opens (or creates) the database at `path`: WAL, so readers never block the
 * writer and several processes can log at once; a busy timeout, so writers
 * queue instead of failing (opening included); foreign keys; the schema
 * migrated to the current version (refused when newer).
 */
export function openDatabase(path: string, options: DatabaseOptions = {}): OpenedDatabase {
  const absolute = path === ':memory:' ? path : resolve(path);
  if (absolute !== ':memory:' && !options.readonly) mkdirSync(dirname(absolute), { recursive: true });
  const timeoutMs = options.busyTimeoutMs ?? 10_000;
  const db = new Database(absolute, {
    readonly: options.readonly ?? false,
    fileMustExist: options.readonly ?? false,
    timeout: timeoutMs,
  });
  try {
    return retryWhileBusy(timeoutMs, () => {
      if (!options.readonly) {
        // WAL is a property of the file: set it (which takes an exclusive lock) only on a file not yet in WAL.
        if (db.pragma('journal_mode', { simple: true }) !== 'wal') {
          // 16 KiB pages make metric inserts ~10% faster; it only takes effect on a new, empty file.
          db.pragma('page_size = 16384');
          db.pragma('journal_mode = WAL');
        }
        db.pragma('synchronous = NORMAL'); // durable at every checkpoint of the WAL; safe against crashes
      }
      db.pragma('foreign_keys = ON');
      const upgradedFrom = options.readonly
        ? (db.pragma('user_version', { simple: true }) as number)
        : migrate(db, absolute);
      return { db, path: absolute, upgradedFrom };
    });
  } catch (error) {
    db.close();
    throw error;
  }
}
