/** Conversions between JavaScript values and what the database holds. */

/** SQLite stores NaN as NULL: a metric value read back as NULL is NaN (metrics are never absent). */
export function fromDb(value: number | null): number {
  return value === null ? Number.NaN : value;
}

/** Milliseconds since the epoch, as stored, to a Date (or undefined). */
export function toDate(ms: number | null | undefined): Date | undefined {
  return ms === null || ms === undefined ? undefined : new Date(ms);
}

/** JSON text of metrics or a config with NaN and infinities kept as "NaN", "Infinity", "-Infinity". */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

/** Metrics from JSON written by `toJson` or by SQLite (where NaN is null). */
export function metricsFromJson(text: string | null): Record<string, number> {
  if (!text) return {};
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(JSON.parse(text) as Record<string, unknown>)) {
    if (typeof value === 'number') out[name] = value;
    else if (value === null || value === 'NaN') out[name] = Number.NaN;
    else if (value === 'Infinity' || value === '-Infinity') out[name] = Number(value);
  }
  return out;
}
