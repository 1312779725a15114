import { readFileSync } from 'node:fs';

/** Stable codes of the errors @ckpt/native throws; the same from the native and the JavaScript paths. */
export const NativeErrorCode = {
  NotFound: 'CKPT_NOT_FOUND',
  IsDirectory: 'CKPT_IS_DIRECTORY',
  NotRegularFile: 'CKPT_NOT_REGULAR_FILE',
  PermissionDenied: 'CKPT_PERMISSION_DENIED',
  FileChanged: 'CKPT_FILE_CHANGED',
  OutOfBounds: 'CKPT_OUT_OF_BOUNDS',
  ViewTooLarge: 'CKPT_VIEW_TOO_LARGE',
  NoSpace: 'CKPT_NO_SPACE',
  Format: 'CKPT_FORMAT',
  Closed: 'CKPT_CLOSED',
  InvalidArgument: 'CKPT_INVALID_ARGUMENT',
  Io: 'CKPT_IO',
  Locked: 'CKPT_LOCKED',
  Unsupported: 'CKPT_UNSUPPORTED',
} as const;

export type NativeErrorCode = (typeof NativeErrorCode)[keyof typeof NativeErrorCode];

const knownCodes = new Set<string>(Object.values(NativeErrorCode));

/** What an error says beyond its message: where, what was expected, what was found. */
export interface CkptErrorDetails {
  /** The file or location concerned. */
  path?: string;
  expected?: string;
  found?: string;
  cause?: unknown;
}

/**
 * The base of every error ckpt throws. `code` is stable and machine-readable
 * (`CKPT_NOT_FOUND`, `CKPT_FORMAT`, ...): match on it rather than on messages.
 * It lives here, in the lowest package, so that every package's errors share it.
 */
export class CkptError extends Error {
  override name = 'CkptError';
  readonly code: string;
  readonly path: string | undefined;
  readonly expected: string | undefined;
  readonly found: string | undefined;

  constructor(code: string, message: string, details: CkptErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.path = details.path;
    this.expected = details.expected;
    this.found = details.found;
  }
}

/** An I/O failure from @ckpt/native, with one of the `NativeErrorCode`s. */
export class NativeError extends CkptError {
  override name = 'NativeError';
  declare readonly code: NativeErrorCode;

  constructor(code: NativeErrorCode, message: string, details: CkptErrorDetails = {}) {
    super(code, message, details);
  }
}

/** The message table shared with the Rust core (`native/messages.txt`): code to template. */
const MESSAGES: ReadonlyMap<string, string> = new Map(
  readFileSync(new URL('../messages.txt', import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const tab = line.indexOf('\t');
      return [line.slice(0, tab), line.slice(tab + 1)] as const;
    }),
);

/** The message for `code` from the shared table, its `{name}`s filled from `fields`. */
export function message(code: NativeErrorCode, fields: Record<string, string | number>): string {
  const template = MESSAGES.get(code) ?? code;
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    Object.hasOwn(fields, name) ? String(fields[name]) : whole,
  );
}

/** A NativeError whose message comes from the shared table; `fields.path` becomes its `path`. */
export function nativeError(
  code: NativeErrorCode,
  fields: Record<string, string | number>,
  details: Omit<CkptErrorDetails, 'path'> = {},
): NativeError {
  const path = typeof fields.path === 'string' ? fields.path : undefined;
  return new NativeError(code, message(code, fields), { ...(path === undefined ? {} : { path }), ...details });
}

/**
 * Turns an error thrown by the binding (an Error object with a `CKPT_*` `code`
 * and a `path`, see the binding's `Failure`) into a NativeError.
 */
export function fromBindingError(error: unknown, fallbackPath?: string): unknown {
  if (!(error instanceof Error) || error instanceof CkptError) return error;
  const { code, path } = error as Error & { code?: unknown; path?: unknown };
  if (typeof code !== 'string' || !knownCodes.has(code)) return error;
  return new NativeError(code as NativeErrorCode, error.message, {
    path: typeof path === 'string' ? path : fallbackPath,
    cause: error,
  });
}

/** Turns a Node.js system error from `op` on `path` into a NativeError. */
export function fromNodeError(error: unknown, path: string, op: string): unknown {
  if (error instanceof NativeError || !(error instanceof Error)) return error;
  const { code, syscall } = error as NodeJS.ErrnoException;
  // Only system errors are translated; anything else (a throwing callback) passes through.
  if (typeof syscall !== 'string') return error;
  const cause = { cause: error };
  switch (code) {
    case 'ENOENT':
      return nativeError(NativeErrorCode.NotFound, { path }, cause);
    case 'EISDIR':
      return nativeError(NativeErrorCode.IsDirectory, { path }, cause);
    case 'EACCES':
    case 'EPERM':
      return nativeError(NativeErrorCode.PermissionDenied, { path, op }, cause);
    case 'ENOSPC':
    case 'EDQUOT':
      return nativeError(NativeErrorCode.NoSpace, { path }, cause);
    default:
      return nativeError(NativeErrorCode.Io, { path, op, message: error.message }, cause);
  }
}

export function invalidArgument(text: string): NativeError {
  return nativeError(NativeErrorCode.InvalidArgument, { message: text });
}
