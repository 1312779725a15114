/**
 * A client library's error as ckpt's: which `DatabaseError` code, the
 * message with passwords masked, and whether the work may be retried on a
 * new connection. Each driver supplies its server's error codes.
 */
import { DatabaseError, maskCredentials } from '@ckpt/core';

export interface ErrorCodes {
  /** `PostgreSQL`, `MySQL`: named in messages. */
  server: string;
  auth: ReadonlySet<string>;
  missing: ReadonlySet<string>;
  /** The database is missing: what to do about it. */
  missingHint: string;
  /** The server's codes for a connection that went away (stopped, restarted); Node's network codes are added. */
  gone: ReadonlySet<string>;
  /** Messages that say the same when there is no code. */
  dropped: RegExp;
  /** The server chose this transaction as a victim (deadlock, serialization): run it again. */
  again: ReadonlySet<string>;
}

/** Node's network errors: the connection went away, whichever server was behind it. */
const NETWORK_GONE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOENT',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

export function classifyError(
  codes: ErrorCodes,
  raw: unknown,
  location: string,
  isGone: (error: { code?: unknown; errno?: unknown }) => boolean = () => false,
): { error: Error; retry: boolean } {
  const error = raw as { code?: unknown; errno?: unknown; message?: unknown };
  const code = typeof error?.code === 'string' ? error.code : '';
  const message = maskCredentials(String(error?.message ?? raw));
  const typed = (text: string, databaseCode: NonNullable<ConstructorParameters<typeof DatabaseError>[1]>['code']) =>
    new DatabaseError(text, { code: databaseCode, path: location, cause: raw });
  if (codes.auth.has(code)) {
    return {
      error: typed(`${codes.server} refused the credentials for ${location}: ${message}`, 'CKPT_DATABASE_AUTH'),
      retry: false,
    };
  }
  if (codes.missing.has(code)) {
    return {
      error: typed(`${location}: ${message} (${codes.missingHint}, or fix the URL)`, 'CKPT_DATABASE_MISSING'),
      retry: false,
    };
  }
  if (codes.gone.has(code) || NETWORK_GONE.has(code) || isGone(error) || codes.dropped.test(message)) {
    return {
      error: typed(`cannot reach the ${codes.server} server of ${location}: ${message}`, 'CKPT_DATABASE_UNREACHABLE'),
      retry: true,
    };
  }
  return { error: typed(`${codes.server} (${location}): ${message}`, 'CKPT_DATABASE'), retry: codes.again.has(code) };
}
