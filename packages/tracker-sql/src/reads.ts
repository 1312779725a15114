/** Every query of the TrackingDatabase contract, in SQL that PostgreSQL and MySQL/MariaDB both run. */
import {
  type BestCheckpointsQuery,
  checkPage,
  configPathParts,
  type Experiment,
  type ExperimentPage,
  type ExperimentQuery,
  InvalidArgumentError,
  type MetricBucket,
  type MetricComparison,
  type MetricPointRow,
  type MetricSummary,
  type Statistics,
  type StepRange,
  type TrackedCheckpoint,
} from '@ckpt/core';
import type { SqlDriver, SqlSession, SqlValue } from './driver.js';
import {
  CHECKPOINT_COLUMNS,
  checkpointFromRow,
  decodeOptional,
  EXPERIMENT_COLUMNS,
  experimentFromRow,
  list,
  num,
  optNum,
} from './rows.js';

const SUMMARY_COLUMN = { min: 'min_value', max: 'max_value', last: 'last_value' } as const;
const OPERATORS = { lt: '<', lte: '<=', gt: '>', gte: '>=', eq: '=' } as const;
const ms = (value: Date | number) => (value instanceof Date ? value.getTime() : value);
const MAX_STEP = Number.MAX_SAFE_INTEGER;

/** Tags of these experiments, fetched in one query. */
async function tagsOf(s: SqlSession, ids: readonly number[]): Promise<Map<number, string[]>> {
  const tags = new Map<number, string[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return tags;
  const rows = await s.rows<{ experiment_id: unknown; tag: string }>(
    `SELECT experiment_id, tag FROM experiment_tags WHERE experiment_id IN (${list(ids.length)})`,
    ids,
  );
  for (const r of rows) tags.get(num(r.experiment_id))?.push(r.tag);
  return tags;
}

export async function experimentsWhere(
  s: SqlSession,
  where: string,
  params: readonly SqlValue[],
): Promise<Experiment[]> {
  const rows = await s.rows(`SELECT ${EXPERIMENT_COLUMNS} FROM experiments e WHERE ${where}`, params);
  const tags = await tagsOf(
    s,
    rows.map((r) => num(r.id)),
  );
  return rows.map((r) => experimentFromRow(r, tags.get(num(r.id)) ?? []));
}

function sortClause(sortBy: string, order: 'ASC' | 'DESC' | undefined): { sql: string; params: SqlValue[] } {
  if (sortBy.startsWith('metric:')) {
    const [, name, of = 'min'] = sortBy.split(':');
    const column = SUMMARY_COLUMN[of as keyof typeof SUMMARY_COLUMN];
    if (!name || !column) throw new InvalidArgumentError(`cannot sort by ${JSON.stringify(sortBy)}`);
    const value = `(SELECT s.${column} FROM metric_series s WHERE s.experiment_id = e.id AND s.name = ?)`;
    return { sql: `ORDER BY ${value} IS NULL, ${value} ${order ?? 'ASC'}, e.id`, params: [name, name] };
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

export async function queryExperiments(
  driver: SqlDriver,
  s: SqlSession,
  query: ExperimentQuery = {},
): Promise<ExperimentPage> {
  const where: string[] = [];
  const params: SqlValue[] = [];
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
    where.push(`e.status IN (${list(statuses.length)})`);
    params.push(...statuses);
  }
  for (const [path, value] of Object.entries(query.config ?? {})) {
    const parts = configPathParts(path);
    const condition =
      value === null
        ? driver.dialect.configIsNull('e.config', parts)
        : driver.dialect.configEquals('e.config', parts, value);
    where.push(`(${condition.sql})`);
    params.push(...condition.params);
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
    const values: SqlValue[] = [];
    for (const [key, op] of Object.entries(OPERATORS)) {
      const value = query.metric[key as keyof MetricComparison];
      if (value === undefined) continue;
      conditions.push(` AND s.${column} ${op} ?`);
      values.push(driver.dialect.encodeDouble(value));
    }
    where.push(
      `EXISTS (SELECT 1 FROM metric_series s WHERE s.experiment_id = e.id AND s.name = ?${conditions.join('')})`,
    );
    params.push(query.metric.name, ...values);
  }
  const whereSql = where.length ? where.join(' AND ') : '1 = 1';
  const order = query.order === 'asc' ? 'ASC' : query.order === 'desc' ? 'DESC' : undefined;
  const sort = sortClause(query.sortBy ?? 'started', order);
  const limit = query.limit ?? 100;
  const offset = query.offset ?? 0;
  checkPage(limit, offset);
  const experiments = await experimentsWhere(s, `${whereSql} ${sort.sql} LIMIT ? OFFSET ?`, [
    ...params,
    ...sort.params,
    limit,
    offset,
  ]);
  const [count] = await s.rows<{ n: unknown }>(`SELECT count(*) AS n FROM experiments e WHERE ${whereSql}`, params);
  return { experiments, total: num(count?.n) };
}

async function seriesId(s: SqlSession, experimentId: number, name: string): Promise<number | undefined> {
  const [row] = await s.rows<{ id: unknown }>('SELECT id FROM metric_series WHERE experiment_id = ? AND name = ?', [
    experimentId,
    name,
  ]);
  return row ? num(row.id) : undefined;
}

export async function metricHistory(
  driver: SqlDriver,
  s: SqlSession,
  experimentId: number,
  name: string,
  range: StepRange = {},
): Promise<MetricPointRow[]> {
  const id = await seriesId(s, experimentId, name);
  if (id === undefined) return [];
  const rows = await s.rows<{ step: unknown; value: unknown; logged_at: unknown }>(
    'SELECT step, value, logged_at FROM metric_points WHERE series_id = ? AND step BETWEEN ? AND ? ORDER BY step, seq',
    [id, range.fromStep ?? 0, range.toStep ?? MAX_STEP],
  );
  return rows.map((r) => ({
    step: num(r.step),
    value: driver.dialect.decodeDouble(r.value),
    timestamp: new Date(num(r.logged_at)),
  }));
}

export async function metricBuckets(
  driver: SqlDriver,
  s: SqlSession,
  experimentId: number,
  name: string,
  buckets: number,
  range: StepRange = {},
): Promise<MetricBucket[]> {
  if (!Number.isInteger(buckets) || buckets < 1) throw new InvalidArgumentError('buckets must be a positive integer');
  const id = await seriesId(s, experimentId, name);
  if (id === undefined) return [];
  const [bounds] = await s.rows<{ lo: unknown; hi: unknown }>(
    'SELECT min(step) AS lo, max(step) AS hi FROM metric_points WHERE series_id = ? AND step BETWEEN ? AND ?',
    [id, range.fromStep ?? 0, range.toStep ?? MAX_STEP],
  );
  if (bounds?.lo === null || bounds?.lo === undefined) return [];
  const lo = num(bounds.lo);
  const hi = num(bounds.hi);
  const span = hi - lo + 1;
  const bucket = driver.dialect.intDiv(`(step - ${lo}) * ${buckets}`, String(span));
  const rows = await s.rows<Record<string, unknown>>(
    `SELECT bucket, min(step) AS from_step, max(step) AS to_step, count(*) AS n,
            min(value) AS min_value, max(value) AS max_value, max(CASE WHEN rnk = 1 THEN value END) AS last_value,
            max(CASE WHEN rnk = 1 THEN 1 ELSE 0 END) AS has_last
     FROM (SELECT ${bucket} AS bucket, step, value,
                  row_number() OVER (PARTITION BY ${bucket} ORDER BY step DESC, seq DESC) AS rnk
           FROM metric_points WHERE series_id = ? AND step BETWEEN ? AND ?) b
     GROUP BY bucket ORDER BY bucket`,
    [id, lo, hi],
  );
  return rows.map((r) => ({
    fromStep: num(r.from_step),
    toStep: num(r.to_step),
    count: num(r.n),
    min: driver.dialect.decodeDouble(r.min_value),
    max: driver.dialect.decodeDouble(r.max_value),
    last: driver.dialect.decodeDouble(r.last_value),
  }));
}

export async function metricSummaries(
  driver: SqlDriver,
  s: SqlSession,
  experimentId: number,
): Promise<MetricSummary[]> {
  const rows = await s.rows<Record<string, unknown>>(
    `SELECT name, point_count, min_value, max_value, last_value, last_step FROM metric_series
     WHERE experiment_id = ? ORDER BY name`,
    [experimentId],
  );
  return rows.map((r) => ({
    name: String(r.name),
    count: num(r.point_count),
    min: decodeOptional(driver.dialect, r.min_value),
    max: decodeOptional(driver.dialect, r.max_value),
    last: num(r.point_count) === 0 ? undefined : driver.dialect.decodeDouble(r.last_value),
    lastStep: optNum(r.last_step),
  }));
}

async function checkpointsWhere(
  driver: SqlDriver,
  s: SqlSession,
  from: string,
  params: readonly SqlValue[],
): Promise<TrackedCheckpoint[]> {
  const rows = await s.rows<Record<string, unknown>>(`SELECT ${CHECKPOINT_COLUMNS} ${from}`, params);
  const metrics = new Map<number, Record<string, number>>();
  const ids = rows.map((r) => num(r.row_id));
  if (ids.length > 0) {
    const values = await s.rows<{ checkpoint_row: unknown; name: string; value: unknown }>(
      `SELECT checkpoint_row, name, value FROM checkpoint_metrics WHERE checkpoint_row IN (${list(ids.length)})`,
      ids,
    );
    for (const v of values) {
      const id = num(v.checkpoint_row);
      let m = metrics.get(id);
      if (!m) {
        m = Object.create(null) as Record<string, number>;
        metrics.set(id, m);
      }
      m[v.name] = driver.dialect.decodeDouble(v.value);
    }
  }
  return rows.map((r) => checkpointFromRow(r, metrics));
}

export function listCheckpoints(
  driver: SqlDriver,
  s: SqlSession,
  experimentId: number,
  options: { includeDeleted?: boolean } = {},
): Promise<TrackedCheckpoint[]> {
  return checkpointsWhere(
    driver,
    s,
    `FROM checkpoints c JOIN experiments e ON e.id = c.experiment_id
     WHERE c.experiment_id = ? ${options.includeDeleted ? '' : 'AND c.deleted_at IS NULL'} ORDER BY c.created_at, c.id`,
    [experimentId],
  );
}

export function bestCheckpoints(
  driver: SqlDriver,
  s: SqlSession,
  options: BestCheckpointsQuery,
): Promise<TrackedCheckpoint[]> {
  const direction = (options.mode ?? 'min') === 'min' ? 'ASC' : 'DESC';
  const n = options.n ?? 10;
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('n must be a positive integer');
  const project = options.project === undefined ? '' : 'AND e.project = ?';
  return checkpointsWhere(
    driver,
    s,
    `FROM checkpoint_metrics bm
     JOIN checkpoints c ON c.id = bm.checkpoint_row JOIN experiments e ON e.id = c.experiment_id
     WHERE bm.name = ? AND bm.value IS NOT NULL AND c.deleted_at IS NULL ${project}
     ORDER BY bm.value ${direction}, bm.checkpoint_row ${direction} LIMIT ?`, // the index's order: no sort
    [options.metric, ...(options.project === undefined ? [] : [options.project]), n],
  );
}

export async function statistics(s: SqlSession, options: { project?: string } = {}): Promise<Statistics> {
  const filter = options.project === undefined ? '' : 'WHERE e.project = ?';
  const params = options.project === undefined ? [] : [options.project];
  const byStatus: Record<string, number> = Object.create(null);
  for (const r of await s.rows<{ status: string; n: unknown }>(
    `SELECT e.status, count(*) AS n FROM experiments e ${filter} GROUP BY e.status`,
    params,
  )) {
    byStatus[r.status] = num(r.n);
  }
  const perExperiment = (
    await s.rows<Record<string, unknown>>(
      `SELECT e.id, e.name,
         (SELECT count(*) FROM checkpoints c WHERE c.experiment_id = e.id AND c.deleted_at IS NULL) AS n,
         (SELECT coalesce(sum(c.size), 0) FROM checkpoints c WHERE c.experiment_id = e.id AND c.deleted_at IS NULL) AS bytes,
         (SELECT count(*) FROM metric_series s WHERE s.experiment_id = e.id) AS series,
         (SELECT coalesce(sum(s.point_count), 0) FROM metric_series s WHERE s.experiment_id = e.id) AS points
       FROM experiments e ${filter} ORDER BY e.id`,
      params,
    )
  ).map((r) => ({
    id: num(r.id),
    name: String(r.name),
    count: num(r.n),
    bytes: num(r.bytes),
    series: num(r.series),
    points: num(r.points),
  }));
  const [d] = await s.rows<Record<string, unknown>>(
    `SELECT count(*) AS n, avg(e.ended_at - e.started_at) AS mean, min(e.ended_at - e.started_at) AS shortest,
       max(e.ended_at - e.started_at) AS longest FROM experiments e
     WHERE e.ended_at IS NOT NULL ${options.project === undefined ? '' : 'AND e.project = ?'}`,
    params,
  );
  const sum = (key: 'count' | 'bytes' | 'series' | 'points') => perExperiment.reduce((total, r) => total + r[key], 0);
  return {
    experiments: { total: perExperiment.length, byStatus },
    checkpoints: {
      total: sum('count'),
      bytes: sum('bytes'),
      byExperiment: perExperiment.map(({ id, name, count, bytes }) => ({ id, name, count, bytes })),
    },
    durations: {
      count: num(d?.n),
      mean: optNum(d?.mean),
      min: optNum(d?.shortest),
      max: optNum(d?.longest),
    },
    metrics: {
      series: sum('series'),
      points: sum('points'),
      byExperiment: perExperiment.map(({ id, name, series, points }) => ({ id, name, series, points })),
    },
  };
}
