/** Writes other than metric points: each one transaction, each safe to run again after a lost answer. */
import {
  addToSummary,
  type CheckpointRecord,
  ConflictError,
  checkName,
  currentGitCommit,
  currentHost,
  type ExperimentExport,
  type ExperimentInput,
  emptySummary,
  toJson,
} from '@ckpt/core';
import type { SqlDriver, SqlSession, SqlValue } from './driver.js';
import { checkLength, json, num } from './rows.js';

const time = (value: string | Date | undefined) =>
  value === undefined ? null : value instanceof Date ? value.getTime() : Date.parse(value);

export function checkedName(value: unknown, what: string): string {
  return checkLength(checkName(value, what), what);
}

/** Creates or resumes an experiment; returns its id. Two processes starting one name at once get one row. */
export async function startExperiment(driver: SqlDriver, s: SqlSession, input: ExperimentInput): Promise<number> {
  const name = checkedName(input?.name, 'experiment name');
  const project = checkedName(input.project ?? 'default', 'project');
  const tags = (input.tags ?? []).map((t) => checkedName(t, 'tag'));
  const host = input.host ?? currentHost();
  const gitCommit = input.gitCommit ?? currentGitCommit() ?? null;
  const created = await s.run(
    driver.dialect.insertIgnore('experiments', [
      'project',
      'name',
      'status',
      'description',
      'config',
      'host',
      'git_commit',
      'started_at',
    ]),
    [project, name, 'running', input.description ?? null, toJson(input.config ?? {}), host, gitCommit, Date.now()],
  );
  const [row] = await s.rows<{ id: unknown; config: unknown }>(
    'SELECT id, config FROM experiments WHERE project = ? AND name = ? FOR UPDATE',
    [project, name],
  );
  if (!row)
    throw new ConflictError(`experiment ${name} of project ${project} could not be created in ${driver.location}`);
  const id = num(row.id);
  if (created === 0) {
    const config = { ...(json(row?.config) as object), ...input.config };
    await s.run(
      `UPDATE experiments SET status = 'running', ended_at = NULL, config = ?,
         description = coalesce(?, description), host = ?, git_commit = coalesce(?, git_commit) WHERE id = ?`,
      [toJson(config), input.description ?? null, host, gitCommit, id],
    );
  }
  await addTags(driver, s, id, tags);
  return id;
}

export async function addTags(driver: SqlDriver, s: SqlSession, id: number, tags: readonly string[]): Promise<void> {
  const insert = driver.dialect.insertIgnore('experiment_tags', ['experiment_id', 'tag']);
  for (const tag of tags) await s.run(insert, [id, checkedName(tag, 'tag')]);
}

export async function logParams(
  driver: SqlDriver,
  s: SqlSession,
  id: number,
  params: Record<string, unknown>,
): Promise<void> {
  const upsert = driver.dialect.upsert(
    'params',
    ['experiment_id', 'name', 'value'],
    ['experiment_id', 'name'],
    ['value'],
  );
  for (const [key, value] of Object.entries(params)) {
    await s.run(upsert, [id, checkedName(key, 'param name'), toJson(value ?? null)]);
  }
}

export async function recordCheckpoint(
  driver: SqlDriver,
  s: SqlSession,
  id: number,
  record: CheckpointRecord,
): Promise<void> {
  const columns = [
    'experiment_id',
    'checkpoint_id',
    'path',
    'format',
    'size',
    'sha256',
    'epoch',
    'step',
    'created_at',
    'is_best',
    'is_latest',
    'is_protected',
    'status',
    'tags',
    'description',
    'deleted_at',
  ];
  const values: SqlValue[] = [
    id,
    checkLength(record.id, 'checkpoint id'),
    record.path,
    record.format ?? null,
    record.size ?? null,
    record.sha256 ?? null,
    record.epoch ?? null,
    record.step ?? null,
    Date.parse(record.timestamp) || Date.now(),
    record.isBest ? 1 : 0,
    record.isLatest ? 1 : 0,
    record.protected ? 1 : 0,
    record.status,
    JSON.stringify(record.tags),
    record.description ?? null,
    null,
  ];
  const update = columns.filter((c) => !['experiment_id', 'checkpoint_id', 'created_at'].includes(c));
  await s.run(driver.dialect.upsert('checkpoints', columns, ['experiment_id', 'checkpoint_id'], update), values);
  const [row] = await s.rows<{ id: unknown }>(
    'SELECT id FROM checkpoints WHERE experiment_id = ? AND checkpoint_id = ?',
    [id, record.id],
  );
  await writeCheckpointMetrics(driver, s, num(row?.id), record.metrics);
}

async function writeCheckpointMetrics(
  driver: SqlDriver,
  s: SqlSession,
  row: number,
  metrics: Record<string, number>,
): Promise<void> {
  const upsert = driver.dialect.upsert(
    'checkpoint_metrics',
    ['checkpoint_row', 'name', 'value'],
    ['checkpoint_row', 'name'],
    ['value'],
  );
  for (const [name, value] of Object.entries(metrics)) {
    await s.run(upsert, [row, checkLength(name, 'metric name'), driver.dialect.encodeDouble(value)]);
  }
}

/** A whole experiment from another database, in the caller's transaction. */
export async function importExperiment(driver: SqlDriver, s: SqlSession, data: ExperimentExport): Promise<number> {
  const e = data.experiment;
  const existing = await s.rows('SELECT id FROM experiments WHERE project = ? AND name = ?', [e.project, e.name]);
  if (existing.length > 0) {
    throw new ConflictError(
      `experiment ${JSON.stringify(e.name)} of project ${JSON.stringify(e.project)} exists already in ${driver.location}`,
    );
  }
  const id = await s.insertId(
    `INSERT INTO experiments (project, name, status, description, config, host, git_commit, started_at, ended_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      checkedName(e.project, 'project'),
      checkedName(e.name, 'experiment name'),
      e.status,
      e.description ?? null,
      toJson(e.config),
      e.host ?? null,
      e.gitCommit ?? null,
      time(e.startedAt),
      time(e.endedAt),
    ],
  );
  await addTags(driver, s, id, e.tags);
  await logParams(driver, s, id, data.params);
  const { dialect } = driver;
  for (const [name, points] of Object.entries(data.metrics)) {
    const series = await s.insertId('INSERT INTO metric_series (experiment_id, name) VALUES (?, ?)', [
      id,
      checkedName(name, 'metric name'),
    ]);
    const summary = emptySummary();
    const columns: SqlValue[][] = [[], [], [], [], []];
    points.forEach((p, seq) => {
      columns[0]?.push(series);
      columns[1]?.push(seq);
      columns[2]?.push(p.step);
      columns[3]?.push(dialect.encodeDouble(p.value));
      columns[4]?.push(Date.parse(p.timestamp));
      addToSummary(summary, p.step, p.value);
    });
    if (points.length > 0) {
      await s.insertRows('metric_points', ['series_id', 'seq', 'step', 'value', 'logged_at'], {
        length: points.length,
        values: columns,
      });
    }
    const encode = (v: number | null) => (v === null ? null : dialect.encodeDouble(v));
    await s.run(
      'UPDATE metric_series SET point_count = ?, min_value = ?, max_value = ?, last_value = ?, last_step = ? WHERE id = ?',
      [summary.count, encode(summary.min), encode(summary.max), encode(summary.lastValue), summary.lastStep, series],
    );
  }
  for (const c of data.checkpoints) {
    const row = await s.insertId(
      `INSERT INTO checkpoints (experiment_id, checkpoint_id, path, format, size, sha256, epoch, step, created_at,
         is_best, is_latest, is_protected, status, tags, description, deleted_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        id,
        checkLength(c.id, 'checkpoint id'),
        c.path,
        c.format ?? null,
        c.size ?? null,
        c.sha256 ?? null,
        c.epoch ?? null,
        c.step ?? null,
        time(c.createdAt),
        c.isBest ? 1 : 0,
        c.isLatest ? 1 : 0,
        c.protected ? 1 : 0,
        c.status,
        JSON.stringify(c.tags),
        c.description ?? null,
        time(c.deletedAt),
      ],
    );
    await writeCheckpointMetrics(driver, s, row, c.metrics);
  }
  return id;
}
