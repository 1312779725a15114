/** Rows as the server returns them, to core's tracking types. Drivers may return numbers as strings (bigint, numeric). */
import {
  type Experiment,
  type ExperimentStatus,
  InvalidArgumentError,
  metricsFromJson,
  type TrackedCheckpoint,
} from '@ckpt/core';
import type { Dialect } from './driver.js';

/** The longest name (experiment, project, tag, metric, param, checkpoint id) a server database keeps. */
export const MAX_NAME = 255;

export function checkLength(value: string, what: string): string {
  if (value.length > MAX_NAME) {
    throw new InvalidArgumentError(`${what} is ${value.length} characters long, over ${MAX_NAME}`, {
      found: `${value.slice(0, 40)}…`,
    });
  }
  return value;
}

export const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
export const optNum = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : num(v));
export const optText = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));
const date = (v: unknown): Date | undefined => (v === null || v === undefined ? undefined : new Date(num(v)));

/** JSON read back: servers with a JSON type hand it parsed, others as text. */
export function json(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v;
}

export const EXPERIMENT_COLUMNS =
  'e.id, e.project, e.name, e.status, e.description, e.config, e.host, e.git_commit, e.started_at, e.ended_at';

export function experimentFromRow(row: Record<string, unknown>, tags: string[]): Experiment {
  return {
    id: num(row.id),
    project: String(row.project),
    name: String(row.name),
    status: row.status as ExperimentStatus,
    description: optText(row.description),
    config: (json(row.config) ?? {}) as Record<string, unknown>,
    tags: [...tags].sort(),
    host: optText(row.host),
    gitCommit: optText(row.git_commit),
    startedAt: new Date(num(row.started_at)),
    endedAt: date(row.ended_at),
  };
}

export const CHECKPOINT_COLUMNS = `c.id AS row_id, c.checkpoint_id, c.path, c.format, c.size, c.sha256, c.epoch, c.step,
  c.created_at, c.is_best, c.is_latest, c.is_protected, c.status, c.tags, c.description, c.deleted_at,
  e.id AS experiment_id, e.name AS experiment_name, e.project`;

export function checkpointFromRow(
  r: Record<string, unknown>,
  metrics: Map<number, Record<string, number>>,
): TrackedCheckpoint {
  return {
    experiment: { id: num(r.experiment_id), name: String(r.experiment_name), project: String(r.project) },
    id: String(r.checkpoint_id),
    path: String(r.path),
    format: optText(r.format),
    size: optNum(r.size),
    sha256: optText(r.sha256),
    epoch: optNum(r.epoch),
    step: optNum(r.step),
    createdAt: new Date(num(r.created_at)),
    isBest: num(r.is_best) === 1,
    isLatest: num(r.is_latest) === 1,
    protected: num(r.is_protected) === 1,
    status: String(r.status),
    tags: json(r.tags) as string[],
    description: optText(r.description),
    metrics: metrics.get(num(r.row_id)) ?? metricsFromJson(null),
    deletedAt: date(r.deleted_at),
  };
}

/** Placeholders for a list: `?, ?, ?`. */
export const list = (n: number) => Array.from({ length: n }, () => '?').join(', ');

export function decodeOptional(dialect: Dialect, v: unknown): number | undefined {
  return v === null || v === undefined ? undefined : dialect.decodeDouble(v);
}
