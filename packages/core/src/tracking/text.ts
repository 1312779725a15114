/** Values as tracking databases store them, and an experiment as JSON or CSV text. */
import { InvalidArgumentError, shown } from '../errors.js';
import { type ExperimentExport, type ExperimentStatus, STATUSES } from './types.js';

/** JSON text with NaN and infinities kept as "NaN", "Infinity", "-Infinity". */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

/** Metrics from JSON written by `toJson`, or by a database where NaN is null. */
export function metricsFromJson(text: string | null | undefined): Record<string, number> {
  const out: Record<string, number> = Object.create(null);
  if (!text) return out;
  const parsed = JSON.parse(text) as unknown;
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return out;
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof value === 'number') out[name] = value;
    else if (value === null || value === 'NaN') out[name] = Number.NaN;
    else if (value === 'Infinity' || value === '-Infinity') out[name] = Number(value);
  }
  return out;
}

const NON_BLANK = /\S/;

/** A non-empty name (experiment, project, tag, metric, param). */
export function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !NON_BLANK.test(value)) {
    throw new InvalidArgumentError(`${what} must be a non-empty string`, { found: shown(value) });
  }
  return value;
}

export function checkStatus(status: unknown): ExperimentStatus {
  if (!STATUSES.includes(status as ExperimentStatus)) {
    throw new InvalidArgumentError(`unknown experiment status ${JSON.stringify(status)}`, {
      expected: STATUSES.join(', '),
    });
  }
  return status as ExperimentStatus;
}

/** A metric point's arguments, checked without allocating (the hot path). */
export function checkPoint(name: unknown, value: unknown, step: unknown): void {
  if (typeof name !== 'string' || !NON_BLANK.test(name)) checkName(name, 'metric name');
  if (typeof value !== 'number') {
    throw new InvalidArgumentError(`metric ${JSON.stringify(name)} must be a number`, { found: typeof value });
  }
  if (step !== undefined && (!Number.isInteger(step) || (step as number) < 0)) {
    throw new InvalidArgumentError(`the step of metric ${JSON.stringify(name)} must be a non-negative integer`, {
      found: shown(step),
    });
  }
}

export function checkPage(limit: unknown, offset: unknown): void {
  if (!Number.isInteger(limit) || (limit as number) < 0 || !Number.isInteger(offset) || (offset as number) < 0) {
    throw new InvalidArgumentError('limit and offset must be non-negative integers');
  }
}

/** A dotted config path (`optimizer.lr`) as its parts; anything else is refused. */
export function configPathParts(path: string): string[] {
  if (!/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(path)) {
    throw new InvalidArgumentError(`config path ${JSON.stringify(path)} must be dotted names`, {
      expected: 'e.g. "optimizer.lr"',
    });
  }
  return path.split('.');
}

export function toJsonText(data: ExperimentExport): string {
  return `${JSON.stringify(JSON.parse(toJson(data)), null, 2)}\n`;
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** `experiment,metric,step,value,timestamp`, one row per point; NaN and infinities as pandas reads them. */
export function toCsvText(data: ExperimentExport): string {
  const lines = ['experiment,metric,step,value,timestamp'];
  for (const [name, points] of Object.entries(data.metrics)) {
    for (const p of points) {
      const value = Number.isNaN(p.value)
        ? 'NaN'
        : p.value === Infinity
          ? 'inf'
          : p.value === -Infinity
            ? '-inf'
            : String(p.value);
      lines.push([csvField(data.experiment.name), csvField(name), String(p.step), value, p.timestamp].join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}

export function exportText(data: ExperimentExport, format: unknown): string {
  if (format === 'json') return toJsonText(data);
  if (format === 'csv') return toCsvText(data);
  throw new InvalidArgumentError(`unknown export format ${JSON.stringify(format)}`, { expected: 'json or csv' });
}
