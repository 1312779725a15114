/** mysql2's errors as ckpt's: what went wrong, the database named with its password masked, and whether to retry. */
import { DatabaseError, maskCredentials } from '@ckpt/core';

const AUTH = new Set(['ER_ACCESS_DENIED_ERROR', 'ER_DBACCESS_DENIED_ERROR', 'ER_NOT_SUPPORTED_AUTH_MODE']);
const MISSING = new Set(['ER_BAD_DB_ERROR']);
/** The server shut down, restarted, killed or dropped the connection. */
const GONE = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOENT',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);
/** The server chose this transaction as a victim: running it again is the remedy. */
const AGAIN = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT']);
const DROPPED = /closed state|Connection lost|server has gone away|Pool is closed/i;

export function classify(raw: unknown, location: string): { error: Error; retry: boolean } {
  const error = raw as { code?: unknown; errno?: unknown; message?: unknown };
  const code = typeof error?.code === 'string' ? error.code : '';
  const message = maskCredentials(String(error?.message ?? raw));
  if (AUTH.has(code)) {
    return {
      error: new DatabaseError(`MySQL refused the credentials for ${location}: ${message}`, {
        code: 'CKPT_DATABASE_AUTH',
        path: location,
        cause: raw,
      }),
      retry: false,
    };
  }
  if (MISSING.has(code)) {
    return {
      error: new DatabaseError(`${location}: ${message} (create it with CREATE DATABASE, or fix the URL)`, {
        code: 'CKPT_DATABASE_MISSING',
        path: location,
        cause: raw,
      }),
      retry: false,
    };
  }
  if (GONE.has(code) || error?.errno === 1927 || DROPPED.test(message)) {
    return {
      error: new DatabaseError(`cannot reach the MySQL server of ${location}: ${message}`, {
        code: 'CKPT_DATABASE_UNREACHABLE',
        path: location,
        cause: raw,
      }),
      retry: true,
    };
  }
  return {
    error: new DatabaseError(`MySQL (${location}): ${message}`, { path: location, cause: raw }),
    retry: AGAIN.has(code),
  };
}
