/**
 * The PostgreSQL schema as numbered migrations (see @ckpt/tracker-sql's
 * `migrate`). Never edit one that has shipped: add the next.
 */
import type { Migration } from '@ckpt/tracker-sql';

export const MIGRATIONS: readonly Migration[] = [
  {
    // 1: experiments, their tags and params, metric series and points.
    version: 1,
    statements: [
      `CREATE TABLE experiments (
        id          BIGSERIAL PRIMARY KEY,
        project     TEXT NOT NULL,
        name        TEXT NOT NULL,
        status      TEXT NOT NULL DEFAULT 'running',
        description TEXT,
        config      JSONB NOT NULL DEFAULT '{}',
        host        TEXT,
        git_commit  TEXT,
        started_at  DOUBLE PRECISION NOT NULL,
        ended_at    DOUBLE PRECISION,
        UNIQUE (project, name)
      )`,
      'CREATE INDEX experiments_by_started ON experiments (started_at)',
      'CREATE INDEX experiments_by_status ON experiments (status, started_at)',
      `CREATE TABLE experiment_tags (
        experiment_id BIGINT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
        tag           TEXT NOT NULL,
        PRIMARY KEY (experiment_id, tag)
      )`,
      'CREATE INDEX experiment_tags_by_tag ON experiment_tags (tag, experiment_id)',
      `CREATE TABLE params (
        experiment_id BIGINT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
        name          TEXT NOT NULL,
        value         TEXT NOT NULL,
        PRIMARY KEY (experiment_id, name)
      )`,
      `CREATE TABLE metric_series (
        id            BIGSERIAL PRIMARY KEY,
        experiment_id BIGINT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
        name          TEXT NOT NULL,
        point_count   BIGINT NOT NULL DEFAULT 0,
        min_value     DOUBLE PRECISION,
        max_value     DOUBLE PRECISION,
        last_value    DOUBLE PRECISION,
        last_step     BIGINT,
        UNIQUE (experiment_id, name)
      )`,
      // No foreign key on the points: a per-row check would halve insert speed, and points are
      // only ever written by a batch that holds its series' row lock.
      `CREATE TABLE metric_points (
        series_id BIGINT NOT NULL,
        seq       BIGINT NOT NULL,
        step      BIGINT NOT NULL,
        value     DOUBLE PRECISION,
        logged_at BIGINT NOT NULL,
        PRIMARY KEY (series_id, seq)
      )`,
    ],
  },
  {
    // 2: batch keys (a batch retried after a lost answer is not written twice); checkpoint
    //    records; series by name and best value (for "best val_loss < 0.3" without a scan).
    version: 2,
    statements: [
      `CREATE TABLE metric_batches (
        batch_key    TEXT PRIMARY KEY,
        committed_at BIGINT NOT NULL
      )`,
      'CREATE INDEX metric_series_by_name ON metric_series (name, min_value)',
      `CREATE TABLE checkpoints (
        id            BIGSERIAL PRIMARY KEY,
        experiment_id BIGINT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
        checkpoint_id TEXT NOT NULL,
        path          TEXT NOT NULL,
        format        TEXT,
        size          BIGINT,
        sha256        TEXT,
        epoch         BIGINT,
        step          BIGINT,
        created_at    DOUBLE PRECISION NOT NULL,
        is_best       SMALLINT NOT NULL DEFAULT 0,
        is_latest     SMALLINT NOT NULL DEFAULT 0,
        is_protected  SMALLINT NOT NULL DEFAULT 0,
        status        TEXT NOT NULL DEFAULT 'ok',
        tags          TEXT NOT NULL DEFAULT '[]',
        description   TEXT,
        deleted_at    DOUBLE PRECISION,
        UNIQUE (experiment_id, checkpoint_id)
      )`,
      `CREATE TABLE checkpoint_metrics (
        checkpoint_row BIGINT NOT NULL REFERENCES checkpoints (id) ON DELETE CASCADE,
        name           TEXT NOT NULL,
        value          DOUBLE PRECISION,
        PRIMARY KEY (checkpoint_row, name)
      )`,
      // With the row id last, "best n by a metric" reads n index entries in order, ties included.
      'CREATE INDEX checkpoint_metrics_by_value ON checkpoint_metrics (name, value, checkpoint_row)',
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;
