/**
 * The database schema, as numbered migrations. `PRAGMA user_version` holds
 * the version a file is at: an older file is upgraded in one transaction
 * when opened; a newer one (written by a later ckpt) is refused.
 */
import { UnsupportedError } from '@ckpt/core';
import type Database from 'better-sqlite3';

/** Each entry upgrades from the previous version; never edit one that has shipped. */
export const MIGRATIONS: readonly string[] = [
  // 1: experiments, their tags and params, metric series and points.
  `
  CREATE TABLE experiments (
    id          INTEGER PRIMARY KEY,
    project     TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'running',
    description TEXT,
    config      TEXT NOT NULL DEFAULT '{}',
    started_at  REAL NOT NULL,
    ended_at    REAL,
    UNIQUE (project, name)
  );
  CREATE INDEX experiments_by_started ON experiments (started_at);
  CREATE INDEX experiments_by_status ON experiments (status, started_at);
  CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    tag           TEXT NOT NULL,
    PRIMARY KEY (experiment_id, tag)
  ) WITHOUT ROWID;
  CREATE INDEX experiment_tags_by_tag ON experiment_tags (tag, experiment_id);
  CREATE TABLE params (
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
  ) WITHOUT ROWID;
  CREATE TABLE metric_series (
    id            INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    UNIQUE (experiment_id, name)
  );
  -- Clustered by series: id = series_id * 2^32 + the point's number in its series, so a
  -- series is one range of the table's own B-tree and appending needs no second index.
  CREATE TABLE metric_points (
    id        INTEGER PRIMARY KEY,
    step      INTEGER NOT NULL,
    value     REAL,
    timestamp INTEGER NOT NULL
  );
  -- For SQL users: every point with its experiment and metric name (NaN reads as NULL).
  CREATE VIEW metric_values AS
    SELECT s.experiment_id, s.name, p.step, p.value, p.timestamp
    FROM metric_series s JOIN metric_points p
      ON p.id BETWEEN s.id * 4294967296 AND s.id * 4294967296 + 4294967295;
  CREATE TRIGGER metric_points_follow_series AFTER DELETE ON metric_series BEGIN
    DELETE FROM metric_points WHERE id BETWEEN old.id * 4294967296 AND old.id * 4294967296 + 4294967295;
  END;
  `,
  // 2: where and when an experiment ran; summaries per metric series (so
  //    "best val_loss < 0.3" needs no scan); checkpoint records.
  `
  ALTER TABLE experiments ADD COLUMN host TEXT;
  ALTER TABLE experiments ADD COLUMN git_commit TEXT;
  ALTER TABLE metric_series ADD COLUMN count INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE metric_series ADD COLUMN min_value REAL;
  ALTER TABLE metric_series ADD COLUMN max_value REAL;
  ALTER TABLE metric_series ADD COLUMN last_value REAL;
  ALTER TABLE metric_series ADD COLUMN last_step INTEGER;
  UPDATE metric_series SET
    count = (SELECT count(*) FROM metric_points p WHERE p.id BETWEEN metric_series.id * 4294967296 AND metric_series.id * 4294967296 + 4294967295),
    min_value = (SELECT min(value) FROM metric_points p WHERE p.id BETWEEN metric_series.id * 4294967296 AND metric_series.id * 4294967296 + 4294967295),
    max_value = (SELECT max(value) FROM metric_points p WHERE p.id BETWEEN metric_series.id * 4294967296 AND metric_series.id * 4294967296 + 4294967295),
    last_step = (SELECT max(step) FROM metric_points p WHERE p.id BETWEEN metric_series.id * 4294967296 AND metric_series.id * 4294967296 + 4294967295),
    last_value = (SELECT value FROM metric_points p WHERE p.id BETWEEN metric_series.id * 4294967296 AND metric_series.id * 4294967296 + 4294967295
                  ORDER BY step DESC, id DESC LIMIT 1);
  CREATE INDEX metric_series_by_name ON metric_series (name, min_value);
  CREATE TABLE checkpoints (
    id            INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    checkpoint_id TEXT NOT NULL,
    path          TEXT NOT NULL,
    format        TEXT,
    size          INTEGER,
    sha256        TEXT,
    epoch         INTEGER,
    step          INTEGER,
    created_at    REAL NOT NULL,
    is_best       INTEGER NOT NULL DEFAULT 0,
    is_latest     INTEGER NOT NULL DEFAULT 0,
    protected     INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'ok',
    tags          TEXT NOT NULL DEFAULT '[]',
    description   TEXT,
    deleted_at    REAL,
    UNIQUE (experiment_id, checkpoint_id)
  );
  CREATE TABLE checkpoint_metrics (
    checkpoint INTEGER NOT NULL REFERENCES checkpoints (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    value      REAL,
    PRIMARY KEY (checkpoint, name)
  ) WITHOUT ROWID;
  CREATE INDEX checkpoint_metrics_by_value ON checkpoint_metrics (name, value);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to SCHEMA_VERSION, or refuses a newer one. Returns the version it was at. */
export function migrate(db: Database.Database, path: string): number {
  const run = db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new UnsupportedError(
        `the tracking database ${path} has schema version ${version}, newer than this @ckpt/tracker-sqlite knows (${SCHEMA_VERSION}): upgrade the package`,
        { path, expected: `version ${SCHEMA_VERSION} or older`, found: `version ${version}` },
      );
    }
    for (let next = version; next < SCHEMA_VERSION; next++) db.exec(MIGRATIONS[next] as string);
    if (version !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return version;
  });
  return run.immediate();
}
