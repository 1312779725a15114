/**
 * The MySQL/MariaDB schema as numbered migrations (see @ckpt/tracker-sql's
 * `migrate`). Names are VARCHAR(255) (the engine refuses longer ones) so they
 * can be keys; every table compares text byte for byte (utf8mb4_bin), as the
 * other trackers do. DDL commits statement by statement in MySQL, so every
 * statement may run twice (IF NOT EXISTS): a migration cut short is finished
 * by the next opening. Never edit a migration that has shipped: add the next.
 */
import type { Migration } from '@ckpt/tracker-sql';

const TABLE = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin';

export const MIGRATIONS: readonly Migration[] = [
  {
    // 1: experiments, their tags and params, metric series and points.
    version: 1,
    statements: [
      `CREATE TABLE IF NOT EXISTS experiments (
        id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        project     VARCHAR(255) NOT NULL,
        name        VARCHAR(255) NOT NULL,
        status      VARCHAR(16) NOT NULL DEFAULT 'running',
        description TEXT,
        config      JSON NOT NULL,
        host        VARCHAR(255),
        git_commit  VARCHAR(64),
        started_at  DOUBLE NOT NULL,
        ended_at    DOUBLE,
        UNIQUE KEY experiments_by_name (project, name),
        KEY experiments_by_started (started_at),
        KEY experiments_by_status (status, started_at)
      ) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS experiment_tags (
        experiment_id BIGINT NOT NULL,
        tag           VARCHAR(255) NOT NULL,
        PRIMARY KEY (experiment_id, tag),
        KEY experiment_tags_by_tag (tag, experiment_id),
        FOREIGN KEY (experiment_id) REFERENCES experiments (id) ON DELETE CASCADE
      ) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS params (
        experiment_id BIGINT NOT NULL,
        name          VARCHAR(255) NOT NULL,
        value         LONGTEXT NOT NULL,
        PRIMARY KEY (experiment_id, name),
        FOREIGN KEY (experiment_id) REFERENCES experiments (id) ON DELETE CASCADE
      ) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS metric_series (
        id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        experiment_id BIGINT NOT NULL,
        name          VARCHAR(255) NOT NULL,
        point_count   BIGINT NOT NULL DEFAULT 0,
        min_value     DOUBLE,
        max_value     DOUBLE,
        last_value    DOUBLE,
        last_step     BIGINT,
        UNIQUE KEY metric_series_by_experiment (experiment_id, name),
        FOREIGN KEY (experiment_id) REFERENCES experiments (id) ON DELETE CASCADE
      ) ${TABLE}`,
      // Clustered by (series, seq): a series is one range of the table. No foreign key: points
      // are only written by a batch holding its series' row lock, and the check costs per row.
      `CREATE TABLE IF NOT EXISTS metric_points (
        series_id BIGINT NOT NULL,
        seq       BIGINT NOT NULL,
        step      BIGINT NOT NULL,
        value     DOUBLE,
        logged_at BIGINT NOT NULL,
        PRIMARY KEY (series_id, seq)
      ) ${TABLE}`,
    ],
  },
  {
    // 2: batch keys (a batch retried after a lost answer is not written twice); checkpoint records.
    version: 2,
    statements: [
      `CREATE TABLE IF NOT EXISTS metric_batches (
        batch_key    CHAR(36) NOT NULL PRIMARY KEY,
        committed_at BIGINT NOT NULL
      ) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS checkpoints (
        id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        experiment_id BIGINT NOT NULL,
        checkpoint_id VARCHAR(255) NOT NULL,
        path          TEXT NOT NULL,
        format        VARCHAR(64),
        size          BIGINT,
        sha256        VARCHAR(64),
        epoch         BIGINT,
        step          BIGINT,
        created_at    DOUBLE NOT NULL,
        is_best       SMALLINT NOT NULL DEFAULT 0,
        is_latest     SMALLINT NOT NULL DEFAULT 0,
        is_protected  SMALLINT NOT NULL DEFAULT 0,
        status        VARCHAR(32) NOT NULL DEFAULT 'ok',
        tags          TEXT NOT NULL,
        description   TEXT,
        deleted_at    DOUBLE,
        UNIQUE KEY checkpoints_by_id (experiment_id, checkpoint_id),
        FOREIGN KEY (experiment_id) REFERENCES experiments (id) ON DELETE CASCADE
      ) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS checkpoint_metrics (
        checkpoint_row BIGINT NOT NULL,
        name           VARCHAR(255) NOT NULL,
        value          DOUBLE,
        PRIMARY KEY (checkpoint_row, name),
        KEY checkpoint_metrics_by_value (name, value),
        FOREIGN KEY (checkpoint_row) REFERENCES checkpoints (id) ON DELETE CASCADE
      ) ${TABLE}`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;
