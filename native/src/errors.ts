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

/** Messages shared by both paths, so an error reads the same whichever one ran. */
export const describe = {
  notFound: (path: string) => `file not found: ${path}`,
  isDirectory: (path: string) => `expected a file but found a directory: ${path}`,
  notRegularFile: (path: string) =>
    `expected a regular file but found a special file (pipe, socket or device): ${path}`,
  permissionDenied: (path: string, op: string) => `permission denied while trying to ${op} ${path}`,
  fileChanged: (path: string, detail: string) => `file changed while it was being read: ${path} (${detail})`,
  outOfBounds: (path: string, offset: number, length: number, size: number) =>
    `byte range out of bounds: offset ${offset} + length ${length} is past the end of ${path} (${size} bytes)`,
  noSpace: (path: string) => `no space left on the device while writing ${path}`,
};

/** Turns a binding error (its message is JSON: `{"code","path","message"}`) into a NativeError. */
export function fromBindingError(error: unknown, fallbackPath?: string): unknown {
  if (!(error instanceof Error) || !error.message.startsWith('{"code":')) return error;
  let parsed: { code?: unknown; path?: unknown; message?: unknown };
  try {
    parsed = JSON.parse(error.message);
  } catch {
    return error;
  }
  const { code, path, message } = parsed;
  if (typeof code !== 'string' || !knownCodes.has(code) || typeof message !== 'string') return error;
  return new NativeError(code as NativeErrorCode, message, {
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
  const cause = { path, cause: error };
  switch (code) {
    case 'ENOENT':
      return new NativeError(NativeErrorCode.NotFound, describe.notFound(path), cause);
    case 'EISDIR':
      return new NativeError(NativeErrorCode.IsDirectory, describe.isDirectory(path), cause);
    case 'EACCES':
    case 'EPERM':
      return new NativeError(NativeErrorCode.PermissionDenied, describe.permissionDenied(path, op), cause);
    case 'ENOSPC':
    case 'EDQUOT':
      return new NativeError(NativeErrorCode.NoSpace, describe.noSpace(path), cause);
    default:
      return new NativeError(NativeErrorCode.Io, `could not ${op} ${path}: ${error.message}`, cause);
  }
}

export function invalidArgument(message: string): NativeError {
  return new NativeError(NativeErrorCode.InvalidArgument, `invalid argument: ${message}`);
}
