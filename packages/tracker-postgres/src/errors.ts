/** pg's errors as ckpt's (SQLSTATE codes; Node's network errors are the engine's). */
import { classifyError, type ErrorCodes } from '@ckpt/tracker-sql';

const CODES: ErrorCodes = {
  server: 'PostgreSQL',
  auth: new Set(['28P01', '28000']),
  missing: new Set(['3D000']),
  missingHint: 'create it with createdb',
  gone: new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']),
  dropped:
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i,
  again: new Set(['40001', '40P01']),
};

export function classify(raw: unknown, location: string): { error: Error; retry: boolean } {
  return classifyError(CODES, raw, location);
}
