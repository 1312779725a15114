/** Conversions between JavaScript values and what the database holds. */

/** SQLite stores NaN as NULL: a metric value read back as NULL is NaN (metrics are never absent). */
export function fromDb(value: number | null): number {
  return value === null ? Number.NaN : value;
}

/** Milliseconds since the epoch, as stored, to a Date (or undefined). */
export function toDate(ms: number | null | undefined): Date | undefined {
  return ms === null || ms === undefined ? undefined : new Date(ms);
}

export { metricsFromJson, toJson } from '@ckpt/core';
