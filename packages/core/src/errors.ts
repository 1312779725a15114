import { CkptError, type CkptErrorDetails } from '@ckpt/native';

export { CkptError, type CkptErrorDetails, NativeError, NativeErrorCode, nativeError } from '@ckpt/native';

/**
 * Stable codes of the errors defined here. Native I/O errors have their own
 * (`NativeErrorCode`); three codes are shared (`CKPT_NOT_FOUND`,
 * `CKPT_INVALID_ARGUMENT`, `CKPT_UNSUPPORTED`), and for those the family class
 * below matches by code: `error instanceof NotFoundError` is true for a
 * missing checkpoint and for a missing file reported by @ckpt/native alike.
 */
export const ErrorCode = {
  Format: 'CKPT_FORMAT',
  Integrity: 'CKPT_INTEGRITY',
  NotFound: 'CKPT_NOT_FOUND',
  InvalidArgument: 'CKPT_INVALID_ARGUMENT',
  Unsupported: 'CKPT_UNSUPPORTED',
  Conflict: 'CKPT_CONFLICT',
  Vetoed: 'CKPT_VETOED',
  Program: 'CKPT_PROGRAM',
  Limit: 'CKPT_LIMIT',
  Network: 'CKPT_NETWORK',
  AccessDenied: 'CKPT_ACCESS_DENIED',
  Offline: 'CKPT_OFFLINE',
  HookFailed: 'CKPT_HOOK_FAILED',
  HookTimeout: 'CKPT_HOOK_TIMEOUT',
  TrackerFull: 'CKPT_TRACKER_FULL',
  TrackerBacklog: 'CKPT_TRACKER_BACKLOG',
  TrackerClosed: 'CKPT_CLOSED',
  DatabaseUrl: 'CKPT_DATABASE_URL',
  DatabaseAuth: 'CKPT_DATABASE_AUTH',
  DatabaseMissing: 'CKPT_DATABASE_MISSING',
  DatabaseUnreachable: 'CKPT_DATABASE_UNREACHABLE',
  Database: 'CKPT_DATABASE',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A file is malformed or hostile: says what was expected, what was found, and where. */
export class FormatError extends CkptError {
  override name = 'FormatError';
  constructor(message: string, details: CkptErrorDetails = {}) {
    super(ErrorCode.Format, message, details);
  }
}

/** Bytes do not match their recorded digest or size. */
export class IntegrityError extends CkptError {
  override name = 'IntegrityError';
  constructor(message: string, details: CkptErrorDetails = {}) {
    super(ErrorCode.Integrity, message, details);
  }
}

/**
 * A tracking database refused or failed: a malformed URL (`CKPT_DATABASE_URL`),
 * wrong credentials (`CKPT_DATABASE_AUTH`), no such database
 * (`CKPT_DATABASE_MISSING`), a server that cannot be reached or went away
 * (`CKPT_DATABASE_UNREACHABLE`), anything else the server said (`CKPT_DATABASE`).
 * Messages and `details.path` name the database with its password masked.
 */
export class DatabaseError extends CkptError {
  override name = 'DatabaseError';
  constructor(
    message: string,
    details: CkptErrorDetails & {
      code?:
        | typeof ErrorCode.DatabaseUrl
        | typeof ErrorCode.DatabaseAuth
        | typeof ErrorCode.DatabaseMissing
        | typeof ErrorCode.DatabaseUnreachable
        | typeof ErrorCode.Database;
    } = {},
  ) {
    super(details.code ?? ErrorCode.Database, message, details);
  }
}

/** Using a tracker or tracking database after `close()`. */
export class ClosedError extends CkptError {
  override name = 'ClosedError';
  constructor(what: string) {
    super(ErrorCode.TrackerClosed, `${what} is closed`);
  }
}

/** True when `value` is a ckpt error with `code`, whichever package threw it. */
function hasCode(value: unknown, code: string): boolean {
  return value instanceof CkptError && value.code === code;
}

/**
 * A checkpoint, tensor, backend or file that was asked for does not exist.
 * `instanceof` matches every CKPT_NOT_FOUND, native file errors included.
 */
export class NotFoundError extends CkptError {
  override name = 'NotFoundError';
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasCode(value, ErrorCode.NotFound);
  }
  constructor(message: string, details: CkptErrorDetails = {}) {
    super(ErrorCode.NotFound, message, details);
  }
}

/** A caller passed something unusable: a bad option, a malformed tensor, a wrong type (matched by code, as NotFoundError). */
export class InvalidArgumentError extends CkptError {
  override name = 'InvalidArgumentError';
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasCode(value, ErrorCode.InvalidArgument);
  }
  constructor(message: string, details: CkptErrorDetails = {}) {
    super(ErrorCode.InvalidArgument, message, details);
  }
}

/** Valid, but not something this backend or build can do (a dtype a format lacks, say; matched by code, as NotFoundError). */
export class UnsupportedError extends CkptError {
  override name = 'UnsupportedError';
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasCode(value, ErrorCode.Unsupported);
  }
  constructor(message: string, details: CkptErrorDetails = {}) {
    super(ErrorCode.Unsupported, message, details);
  }
}

/**
 * The file is a program, not data (a TorchScript archive, say): ckpt never
 * runs code from a file, and torch refuses it under `weights_only` too.
 */
export class ProgramError extends CkptError {
  override name = 'ProgramError';
  constructor(message: string, details: CkptErrorDetails = {}) {
    super(ErrorCode.Program, message, details);
  }
}

/**
 * A file or folder asks for more than a budget allows (objects decoded, nesting
 * depth, tree size): refused before memory or time run away. The message names
 * the budget and how to raise it for a file you trust.
 */
export class LimitError extends CkptError {
  override name = 'LimitError';
  constructor(message: string, details: CkptErrorDetails = {}) {
    super(ErrorCode.Limit, message, details);
  }
}

/** Two things collide: tensors sharing memory, two names flattening to one path. */
export class ConflictError extends CkptError {
  override name = 'ConflictError';
  constructor(message: string, details: CkptErrorDetails = {}) {
    super(ErrorCode.Conflict, message, details);
  }
}

/** A `before*` hook vetoed an operation the caller asked for (load, delete, export, backup). */
export class VetoedError extends CkptError {
  override name = 'VetoedError';
  constructor(
    readonly hook: string,
    readonly reason: string,
    operation: string,
  ) {
    super(ErrorCode.Vetoed, `${operation} was vetoed by hook ${hook}: ${reason}`);
  }
}

/** A remote store failed: the network (`CKPT_NETWORK`), refused credentials (`CKPT_ACCESS_DENIED`), or offline mode (`CKPT_OFFLINE`). */
export class NetworkError extends CkptError {
  override name = 'NetworkError';
  constructor(
    message: string,
    details: CkptErrorDetails & {
      code?: typeof ErrorCode.Network | typeof ErrorCode.AccessDenied | typeof ErrorCode.Offline;
    } = {},
  ) {
    super(details.code ?? ErrorCode.Network, message, details);
  }
}

/** A hook failed: a required one threw (`CKPT_HOOK_FAILED`, with `hook` and `event`), or one ran past its time (`CKPT_HOOK_TIMEOUT`). */
export class HookError extends CkptError {
  override name = 'HookError';
  readonly hook: string | undefined;
  readonly event: string | undefined;
  constructor(
    message: string,
    details: CkptErrorDetails & {
      code?: typeof ErrorCode.HookFailed | typeof ErrorCode.HookTimeout;
      hook?: string;
      event?: string;
    } = {},
  ) {
    super(details.code ?? ErrorCode.HookFailed, message, details);
    this.hook = details.hook;
    this.event = details.event;
  }
}

/** A tracker cannot take more: its fixed capacity (`CKPT_TRACKER_FULL`) or points it could not write (`CKPT_TRACKER_BACKLOG`). */
export class TrackerError extends CkptError {
  override name = 'TrackerError';
  constructor(
    message: string,
    details: CkptErrorDetails & { code?: typeof ErrorCode.TrackerFull | typeof ErrorCode.TrackerBacklog } = {},
  ) {
    super(details.code ?? ErrorCode.TrackerFull, message, details);
  }
}

/** True when `error` is a ckpt error, with `code` when given. */
export function isCkptError(error: unknown, code?: string): error is CkptError {
  return error instanceof CkptError && (code === undefined || error.code === code);
}

/**
 * A value from a file or a caller, as text for a message. Never throws: an
 * object from JSON may carry a `toString` key that is not a function, one
 * without a prototype has none, and `String()` on either throws a TypeError.
 */
export function shown(value: unknown, limit = 200): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (value === null || (typeof value !== 'object' && typeof value !== 'function')) text = String(value);
  else {
    try {
      text = JSON.stringify(value) ?? Object.prototype.toString.call(value);
    } catch {
      text = Object.prototype.toString.call(value); // a cycle, or a BigInt inside
    }
  }
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}
