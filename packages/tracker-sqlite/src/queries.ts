/**
 * Reading the tracking database: experiments by any condition, metric
 * histories (downsampled for plotting), the best checkpoints across
 * experiments, and statistics. Every query is served by an index.
 */
import {
  type BestCheckpointsQuery,
  checkPage,
  configPathParts,
  type ExperimentPage,
  type ExperimentQuery,
  InvalidArgumentError,
  type MetricBucket,
  type MetricComparison,
  type MetricPointRow,
  type MetricSummary,
  type Statistics,
  type TrackedCheckpoint,
} from '@ckpt/core';
import type Database from 'better-sqlite3';
import { SERIES_SPAN } from './buffer.js';
import { EXPERIMENT_COLUMNS, type ExperimentRow, experimentFromRow } from './rows.js';
import { fromDb, metricsFromJson, toDate } from './values.js';

const SUMMARY_COLUMN = { min: 'min_value', max: 'max_value', last: 'last_value' } as const;
const OPERATORS = { lt: '<', lte: '<=', gt: '>', gte: '>=', eq: '=' } as const;

function configPath(path: string): string {
  return `$.${configPathParts(path).join('.')}`;
}

const ms = (value: Date | number) => (value instanceof Date ? value.getTime() : value);

export function queryExperiments(db: Database.Database, query: ExperimentQuery = {}): ExperimentPage {
  const where: string[] = [];
  const params: unknown[] = [];
  if (query.project !== undefined) {
    where.push('e.project = ?');
    params.push(query.project);
  }
  for (const tag of [...(query.tag === undefined ? [] : [query.tag]), ...(query.tags ?? [])]) {
    where.push('EXISTS (SELECT 1 FROM experiment_tags t WHERE t.experiment_id = e.id AND t.tag = ?)');
    params.push(tag);
  }
  if (query.status !== undefined) {
    const statuses = [query.status].flat();
    where.push(`e.status IN (${statuses.map(() => '?').join(', ')})`);
    params.push(...statuses);
  }
  for (const [path, value] of Object.entries(query.config ?? {})) {
    if (value === null) {
      where.push('json_extract(e.config, ?) IS NULL');
      params.push(configPath(path));
    } else {
      where.push('json_extract(e.config, ?) = ?');
      params.push(configPath(path), typeof value === 'boolean' ? Number(value) : value);
    }
  }
  if (query.startedAfter !== undefined) {
    where.push('e.started_at >= ?');
    params.push(ms(query.startedAfter));
  }
  if (query.startedBefore !== undefined) {
    where.push('e.started_at < ?');
    params.push(ms(query.startedBefore));
  }
  if (query.metric) {
    const column = SUMMARY_COLUMN[query.metric.of ?? 'min'];
    if (!column) throw new InvalidArgumentError('metric.of must be min, max or last');
    const conditions: string[] = [];
    const values: number[] = [];
    for (const [key, op] of Object.entries(OPERATORS)) {
      const value = query.metric[key as keyof MetricComparison];
      if (value === undefined) continue;
      conditions.push(` AND s.${column} ${op} ?`);
      values.push(value);
    }
    where.push(
      `EXISTS (SELECT 1 FROM metric_series s WHERE s.experiment_id = e.id AND s.name = ?${conditions.join('')})`,
    );
    params.push(query.metric.name, ...values);
  }
  const whereSql = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const order = query.order === 'asc' ? 'ASC' : query.order === 'desc' ? 'DESC' : undefined;
  const { sql: orderSql, params: orderParams } = sortClause(query.sortBy ?? 'started', order);
  const limit = query.limit ?? 100;
  const offset = query.offset ?? 0;
  checkPage(limit, offset);
  const rows = db
    .prepare(`SELECT ${EXPERIMENT_COLUMNS} FROM experiments e ${whereSql} ${orderSql} LIMIT ? OFFSET ?`)
    .all(...params, ...orderParams, limit, offset) as ExperimentRow[];
  const total = (db.prepare(`SELECT count(*) AS n FROM experiments e ${whereSql}`).get(...params) as { n: number }).n;
  return { experiments: rows.map(experimentFromRow), total };
}

function sortClause(sortBy: string, order: 'ASC' | 'DESC' | undefined): { sql: string; params: unknown[] } {
  if (sortBy.startsWith('metric:')) {
    const [, name, of = 'min'] = sortBy.split(':');
    const column = SUMMARY_COLUMN[of as keyof typeof SUMMARY_COLUMN];
    if (!name || !column) throw new InvalidArgumentError(`cannot sort by ${JSON.stringify(sortBy)}`);
    return {
      sql: `ORDER BY (SELECT s.${column} FROM metric_series s WHERE s.experiment_id = e.id AND s.name = ?) IS NULL, (SELECT s.${column} FROM metric_series s WHERE s.experiment_id = e.id AND s.name = ?) ${order ?? 'ASC'}, e.id`,
      params: [name, name],
    };
  }
  const column = {
    started: 'e.started_at',
    ended: 'e.ended_at',
    name: 'e.name',
    duration: '(e.ended_at - e.started_at)',
  }[sortBy];
  if (!column) {
    throw new InvalidArgumentError(`cannot sort experiments by ${JSON.stringify(sortBy)}`, {
      expected: 'started, ended, name, duration or metric:<name>[:min|max|last]',
    });
  }
  return { sql: `ORDER BY ${column} ${order ?? (sortBy === 'name' ? 'ASC' : 'DESC')}, e.id`, params: [] };
}

/** The ids a series' points have (see the schema). */
function seriesRange(id: number): [number, number] {
  return [id * SERIES_SPAN, id * SERIES_SPAN + SERIES_SPAN - 1];
}

function seriesId(db: Database.Database, experimentId: number, name: string): number | undefined {
  const row = db.prepare('SELECT id FROM metric_series WHERE experiment_id = ? AND name = ?').get(experimentId, name) as
    | { id: number }
    | undefined;
  return row?.id;
}

/** Every point of a metric, in step order (optionally a step range). */
export function metricHistory(
  db: Database.Database,
  experimentId: number,
  name: string,
  range: { fromStep?: number; toStep?: number } = {},
): MetricPointRow[] {
  const id = seriesId(db, experimentId, name);
  if (id === undefined) return [];
  const rows = db
    .prepare(
      'SELECT step, value, timestamp FROM metric_points WHERE id BETWEEN ? AND ? AND step BETWEEN ? AND ? ORDER BY step, id',
    )
    .all(...seriesRange(id), range.fromStep ?? 0, range.toStep ?? Number.MAX_SAFE_INTEGER) as Array<{
    step: number;
    value: number | null;
    timestamp: number;
  }>;
  return rows.map((r) => ({ step: r.step, value: fromDb(r.value), timestamp: new Date(r.timestamp) }));
}

/**
 * A metric downsampled for plotting: the step range cut into `buckets`
 * equal spans, each with min, max and last value, so spikes survive.
 */
export function metricBuckets(
  db: Database.Database,
  experimentId: number,
  name: string,
  buckets: number,
  range: { fromStep?: number; toStep?: number } = {},
): MetricBucket[] {
  if (!Number.isInteger(buckets) || buckets < 1) throw new InvalidArgumentError('buckets must be a positive integer');
  const id = seriesId(db, experimentId, name);
  if (id === undefined) return [];
  const [first, last] = seriesRange(id);
  const bounds = db
    .prepare(
      'SELECT min(step) AS lo, max(step) AS hi FROM metric_points WHERE id BETWEEN ? AND ? AND step BETWEEN ? AND ?',
    )
    .get(first, last, range.fromStep ?? 0, range.toStep ?? Number.MAX_SAFE_INTEGER) as {
    lo: number | null;
    hi: number | null;
  };
  if (bounds.lo === null || bounds.hi === null) return [];
  const span = bounds.hi - bounds.lo + 1;
  const rows = db
    .prepare(
      `WITH b AS (
         SELECT CAST((step - @lo) * @n / @span AS INTEGER) AS bucket, step, value,
                row_number() OVER (PARTITION BY CAST((step - @lo) * @n / @span AS INTEGER) ORDER BY step DESC, id DESC) AS rank
         FROM metric_points WHERE id BETWEEN @first AND @last AND step BETWEEN @lo AND @hi)
       SELECT bucket, min(step) AS fromStep, max(step) AS toStep, count(*) AS count,
              min(value) AS min, max(value) AS max, max(CASE WHEN rank = 1 THEN value END) AS last
       FROM b GROUP BY bucket ORDER BY bucket`,
    )
    .all({ first, last, lo: bounds.lo, hi: bounds.hi, n: buckets, span }) as Array<{
    fromStep: number;
    toStep: number;
    count: number;
    min: number | null;
    max: number | null;
    last: number | null;
  }>;
  return rows.map((r) => ({
    fromStep: r.fromStep,
    toStep: r.toStep,
    count: r.count,
    min: fromDb(r.min),
    max: fromDb(r.max),
    last: fromDb(r.last),
  }));
}

/** Each metric of an experiment with its count, min, max and last value. */
export function metricSummaries(db: Database.Database, experimentId: number): MetricSummary[] {
  const rows = db
    .prepare(
      'SELECT name, count, min_value, max_value, last_value, last_step FROM metric_series WHERE experiment_id = ? ORDER BY name',
    )
    .all(experimentId) as Array<{
    name: string;
    count: number;
    min_value: number | null;
    max_value: number | null;
    last_value: number | null;
    last_step: number | null;
  }>;
  return rows.map((r) => ({
    name: r.name,
    count: r.count,
    min: r.min_value ?? undefined,
    max: r.max_value ?? undefined,
    last: r.count === 0 ? undefined : fromDb(r.last_value),
    lastStep: r.last_step ?? undefined,
  }));
}

const CHECKPOINT_COLUMNS = `c.checkpoint_id, c.path, c.format, c.size, c.sha256, c.epoch, c.step, c.created_at,
  c.is_best, c.is_latest, c.protected, c.status, c.tags, c.description, c.deleted_at,
  e.id AS experiment_id, e.name AS experiment_name, e.project,
  (SELECT json_group_object(m.name, m.value) FROM checkpoint_metrics m WHERE m.checkpoint = c.id) AS metrics`;

interface CheckpointRow {
  checkpoint_id: string;
  path: string;
  format: string | null;
  size: number | null;
  sha256: string | null;
  epoch: number | null;
  step: number | null;
  created_at: number;
  is_best: number;
  is_latest: number;
  protected: number;
  status: string;
  tags: string;
  description: string | null;
  deleted_at: number | null;
  experiment_id: number;
  experiment_name: string;
  project: string;
  metrics: string | null;
}

function checkpointFromRow(r: CheckpointRow): TrackedCheckpoint {
  return {
    experiment: { id: r.experiment_id, name: r.experiment_name, project: r.project },
    id: r.checkpoint_id,
    path: r.path,
    format: r.format ?? undefined,
    size: r.size ?? undefined,
    sha256: r.sha256 ?? undefined,
    epoch: r.epoch ?? undefined,
    step: r.step ?? undefined,
    createdAt: new Date(r.created_at),
    isBest: r.is_best === 1,
    isLatest: r.is_latest === 1,
    protected: r.protected === 1,
    status: r.status,
    tags: JSON.parse(r.tags) as string[],
    description: r.description ?? undefined,
    metrics: metricsFromJson(r.metrics),
    deletedAt: toDate(r.deleted_at),
  };
}

/** The checkpoints of one experiment, oldest first (deleted ones with `includeDeleted`). */
export function listCheckpoints(
  db: Database.Database,
  experimentId: number,
  options: { includeDeleted?: boolean } = {},
): TrackedCheckpoint[] {
  const rows = db
    .prepare(
      `SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints c JOIN experiments e ON e.id = c.experiment_id
       WHERE c.experiment_id = ? ${options.includeDeleted ? '' : 'AND c.deleted_at IS NULL'} ORDER BY c.created_at, c.id`,
    )
    .all(experimentId) as CheckpointRow[];
  return rows.map(checkpointFromRow);
}

/** The best `n` checkpoints by a metric across experiments (or within a project); deleted ones excluded. */
export function bestCheckpoints(db: Database.Database, options: BestCheckpointsQuery): TrackedCheckpoint[] {
  const direction = (options.mode ?? 'min') === 'min' ? 'ASC' : 'DESC';
  const n = options.n ?? 10;
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('n must be a positive integer');
  const rows = db
    .prepare(
      `SELECT ${CHECKPOINT_COLUMNS} FROM checkpoint_metrics bm
       JOIN checkpoints c ON c.id = bm.checkpoint JOIN experiments e ON e.id = c.experiment_id
       WHERE bm.name = ? AND bm.value IS NOT NULL AND c.deleted_at IS NULL ${options.project === undefined ? '' : 'AND e.project = ?'}
       ORDER BY bm.value ${direction}, c.id LIMIT ?`,
    )
    .all(...[options.metric, ...(options.project === undefined ? [] : [options.project]), n]) as CheckpointRow[];
  return rows.map(checkpointFromRow);
}

export function statistics(db: Database.Database, options: { project?: string } = {}): Statistics {
  const filter = options.project === undefined ? '' : 'WHERE e.project = ?';
  const params = options.project === undefined ? [] : [options.project];
  const byStatus = Object.fromEntries(
    (
      db
        .prepare(`SELECT e.status, count(*) AS n FROM experiments e ${filter} GROUP BY e.status`)
        .all(...params) as Array<{
        status: string;
        n: number;
      }>
    ).map((r) => [r.status, r.n]),
  );
  const perExperiment = db
    .prepare(
      `SELECT e.id, e.name,
         (SELECT count(*) FROM checkpoints c WHERE c.experiment_id = e.id AND c.deleted_at IS NULL) AS count,
         (SELECT coalesce(sum(c.size), 0) FROM checkpoints c WHERE c.experiment_id = e.id AND c.deleted_at IS NULL) AS bytes,
         (SELECT count(*) FROM metric_series s WHERE s.experiment_id = e.id) AS series,
         (SELECT coalesce(sum(s.count), 0) FROM metric_series s WHERE s.experiment_id = e.id) AS points
       FROM experiments e ${filter} ORDER BY e.id`,
    )
    .all(...params) as Array<{
    id: number;
    name: string;
    count: number;
    bytes: number;
    series: number;
    points: number;
  }>;
  const durations = db
    .prepare(
      `SELECT count(*) AS count, avg(e.ended_at - e.started_at) AS mean, min(e.ended_at - e.started_at) AS min,
         max(e.ended_at - e.started_at) AS max FROM experiments e
       WHERE e.ended_at IS NOT NULL ${options.project === undefined ? '' : 'AND e.project = ?'}`,
    )
    .get(...params) as { count: number; mean: number | null; min: number | null; max: number | null };
  const sum = (key: 'count' | 'bytes' | 'series' | 'points') => perExperiment.reduce((s, r) => s + r[key], 0);
  return {
    experiments: { total: perExperiment.length, byStatus },
    checkpoints: {
      total: sum('count'),
      bytes: sum('bytes'),
      byExperiment: perExperiment.map(({ id, name, count, bytes }) => ({ id, name, count, bytes })),
    },
    durations: {
      count: durations.count,
      mean: durations.mean ?? undefined,
      min: durations.min ?? undefined,
      max: durations.max ?? undefined,
    },
    metrics: {
      series: sum('series'),
      points: sum('points'),
      byExperiment: perExperiment.map(({ id, name, series, points }) => ({ id, name, series, points })),
    },
  };
}
