/** Writing a whole exported experiment (from `ckpt db copy`) into this database, inside the caller's transaction. */
import { addToSummary, ConflictError, type ExperimentExport, emptySummary, toJson } from '@ckpt/core';
import type Database from 'better-sqlite3';
import { SERIES_SPAN } from './buffer.js';

const time = (text: string | Date | undefined) =>
  text === undefined ? null : text instanceof Date ? text.getTime() : Date.parse(text);

export function importInto(db: Database.Database, data: ExperimentExport): number {
  const e = data.experiment;
  if (db.prepare('SELECT 1 FROM experiments WHERE project = ? AND name = ?').get(e.project, e.name)) {
    throw new ConflictError(
      `experiment ${JSON.stringify(e.name)} of project ${JSON.stringify(e.project)} exists already`,
    );
  }
  const id = Number(
    db
      .prepare(
        `INSERT INTO experiments (project, name, status, description, config, host, git_commit, started_at, ended_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        e.project,
        e.name,
        e.status,
        e.description ?? null,
        toJson(e.config),
        e.host ?? null,
        e.gitCommit ?? null,
        time(e.startedAt),
        time(e.endedAt),
      ).lastInsertRowid,
  );
  const tag = db.prepare('INSERT OR IGNORE INTO experiment_tags (experiment_id, tag) VALUES (?, ?)');
  for (const t of e.tags) tag.run(id, t);
  const param = db.prepare('INSERT INTO params (experiment_id, key, value) VALUES (?, ?, ?)');
  for (const [key, value] of Object.entries(data.params)) param.run(id, key, toJson(value ?? null));
  const series = db.prepare('INSERT INTO metric_series (experiment_id, name) VALUES (?, ?)');
  const point = db.prepare('INSERT INTO metric_points (id, step, value, timestamp) VALUES (?, ?, ?, ?)');
  const summarize = db.prepare(
    'UPDATE metric_series SET count = ?, min_value = ?, max_value = ?, last_value = ?, last_step = ? WHERE id = ?',
  );
  for (const [name, points] of Object.entries(data.metrics)) {
    const seriesId = Number(series.run(id, name).lastInsertRowid);
    const summary = emptySummary();
    let pointId = seriesId * SERIES_SPAN;
    for (const p of points) {
      point.run(pointId++, p.step, Number.isNaN(p.value) ? null : p.value, Date.parse(p.timestamp));
      addToSummary(summary, p.step, p.value);
    }
    const last = summary.lastValue !== null && Number.isNaN(summary.lastValue) ? null : summary.lastValue;
    summarize.run(summary.count, summary.min, summary.max, last, summary.lastStep, seriesId);
  }
  const checkpoint = db.prepare(
    `INSERT INTO checkpoints (experiment_id, checkpoint_id, path, format, size, sha256, epoch, step, created_at,
       is_best, is_latest, protected, status, tags, description, deleted_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
  );
  const metric = db.prepare('INSERT INTO checkpoint_metrics (checkpoint, name, value) VALUES (?, ?, ?)');
  for (const c of data.checkpoints) {
    const row = checkpoint.get(
      id,
      c.id,
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
    ) as { id: number };
    for (const [name, value] of Object.entries(c.metrics)) metric.run(row.id, name, Number.isNaN(value) ? null : value);
  }
  return id;
}
