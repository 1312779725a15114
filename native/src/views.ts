import { constants } from 'node:buffer';
import { describe, invalidArgument, NativeError, NativeErrorCode } from './errors.js';

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
    throw new NativeError(
      NativeErrorCode.ViewTooLarge,
      `a view of ${length} bytes exceeds the ${MAX_VIEW_BYTES}-byte limit of one Uint8Array here; take several views (${path})`,
      { path },
    );
  }
  if (offset + length > size) {
    throw new NativeError(NativeErrorCode.OutOfBounds, describe.outOfBounds(path, offset, length, size), { path });
  }
}

export function closedError(path: string): NativeError {
  return new NativeError(NativeErrorCode.Closed, `the mapped file is closed: ${path}`, { path });
}
