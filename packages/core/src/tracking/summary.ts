/** A metric series' summary (count, min, max, last), as every tracker keeps it beside the points. */

export interface SeriesSummary {
  count: number;
  /** NaN ignored; null when every value is NaN. */
  min: number | null;
  max: number | null;
  /** The step and value of the point at the highest step (the later one among equal steps). */
  lastStep: number | null;
  lastValue: number | null;
}

export function emptySummary(): SeriesSummary {
  return { count: 0, min: null, max: null, lastStep: null, lastValue: null };
}

/** Adds one point, in arrival order. */
export function addToSummary(summary: SeriesSummary, step: number, value: number): void {
  summary.count++;
  if (!Number.isNaN(value)) {
    if (summary.min === null || value < summary.min) summary.min = value;
    if (summary.max === null || value > summary.max) summary.max = value;
  }
  if (summary.lastStep === null || step >= summary.lastStep) {
    summary.lastStep = step;
    summary.lastValue = value;
  }
}
