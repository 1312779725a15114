/** mysql2's errors as ckpt's (its error names; Node's network errors are the engine's). */
import { classifyError, type ErrorCodes } from '@ckpt/tracker-sql';

const CODES: ErrorCodes = {
  server: 'MySQL',
  auth: new Set(['ER_ACCESS_DENIED_ERROR', 'ER_DBACCESS_DENIED_ERROR', 'ER_NOT_SUPPORTED_AUTH_MODE']),
  missing: new Set(['ER_BAD_DB_ERROR']),
  missingHint: 'create it with CREATE DATABASE',
  gone: new Set([
    'PROTOCOL_CONNECTION_LOST',
    'PROTOCOL_SEQUENCE_TIMEOUT',
    'ER_SERVER_SHUTDOWN',
    'ER_CONNECTION_KILLED',
  ]),
  dropped: /closed state|Connection lost|server has gone away|Pool is closed/i,
  again: new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT']),
};

/** MariaDB's "connection killed" arrives by number only. */
const killed = (error: { errno?: unknown }) => error?.errno === 1927;

export function classify(raw: unknown, location: string): { error: Error; retry: boolean } {
  return classifyError(CODES, raw, location, killed);
}
