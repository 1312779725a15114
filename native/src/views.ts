import { constants } from 'node:buffer';
import { invalidArgument, type NativeError, NativeErrorCode, nativeError } from './errors.js';

/** The longest single view this Node.js allows (4 GiB on Node 20): read bigger files as several views. */
export const MAX_VIEW_BYTES: number = constants.MAX_LENGTH;

function checkInteger(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument(`${name} must be a non-negative safe integer, got ${value}`);
  }
}

/** Validates a view request against the file size, the same way on every path. */
export function checkView(path: string, size: number, offset: number, length: number): void {
  checkInteger(offset, 'offset');
  checkInteger(length, 'length');
  if (length > MAX_VIEW_BYTES) {
    throw nativeError(NativeErrorCode.ViewTooLarge, { path, length, limit: MAX_VIEW_BYTES });
  }
  if (offset + length > size) {
    throw nativeError(NativeErrorCode.OutOfBounds, { path, offset, length, size });
  }
}

export function closedError(path: string): NativeError {
  return nativeError(NativeErrorCode.Closed, { path });
}
