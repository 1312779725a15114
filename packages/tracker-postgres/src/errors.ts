/** pg's errors as ckpt's: what went wrong, the database named with its password masked, and whether to retry. */
import { DatabaseError, maskCredentials } from '@ckpt/core';

const AUTH = new Set(['28P01', '28000']);
const MISSING = new Set(['3D000']);
/** The server shut down, restarted or dropped the connection. */
const GONE = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']);
/** The server chose this transaction as a victim: running it again is the remedy. */
const AGAIN = new Set(['40001', '40P01']);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);
const DROPPED =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i;

export function classify(raw: unknown, location: string): { error: Error; retry: boolean } {
  const error = raw as { code?: unknown; message?: unknown };
  const code = typeof error?.code === 'string' ? error.code : '';
  const message = maskCredentials(String(error?.message ?? raw));
  if (AUTH.has(code)) {
    return {
      error: new DatabaseError(`PostgreSQL refused the credentials for ${location}: ${message}`, {
        code: 'CKPT_DATABASE_AUTH',
        path: location,
        cause: raw,
      }),
      retry: false,
    };
  }
  if (MISSING.has(code)) {
    return {
      error: new DatabaseError(`${location}: ${message} (create it with createdb, or fix the URL)`, {
        code: 'CKPT_DATABASE_MISSING',
        path: location,
        cause: raw,
      }),
      retry: false,
    };
  }
  if (GONE.has(code) || NETWORK.has(code) || DROPPED.test(message)) {
    return {
      error: new DatabaseError(`cannot reach the PostgreSQL server of ${location}: ${message}`, {
        code: 'CKPT_DATABASE_UNREACHABLE',
        path: location,
        cause: raw,
      }),
      retry: true,
    };
  }
  return {
    error: new DatabaseError(`PostgreSQL (${location}): ${message}`, { path: location, cause: raw }),
    retry: AGAIN.has(code),
  };
}
