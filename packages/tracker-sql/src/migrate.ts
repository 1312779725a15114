/**
 * Versioned schema migrations for server databases. `ckpt_schema` holds one
 * row per applied version. Opening takes a server-wide lock, so processes
 * that open a new database at once wait for one another; a database written
 * by a newer ckpt (a version this package does not know) is refused.
 */
import { UnsupportedError } from '@ckpt/core';
import type { SqlDriver, SqlSession } from './driver.js';
import { num } from './rows.js';

export interface Migration {
  /** 1, 2, 3, ...: each upgrades from the one before. Never edit one that has shipped. */
  version: number;
  statements: readonly string[];
}

const CREATE_SCHEMA_TABLE =
  'CREATE TABLE IF NOT EXISTS ckpt_schema (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)';

async function currentVersion(s: SqlSession): Promise<number> {
  const [row] = await s.rows<{ v: unknown }>('SELECT max(version) AS v FROM ckpt_schema');
  return row?.v === null || row?.v === undefined ? 0 : num(row.v);
}

/** Brings the database to the last migration; returns the version it was at. */
export async function migrate(
  driver: SqlDriver,
  migrations: readonly Migration[],
  packageName: string,
): Promise<number> {
  const latest = migrations.length;
  return driver.withLock('ckpt_schema_migration', async (s) => {
    await s.run(CREATE_SCHEMA_TABLE);
    const version = await currentVersion(s);
    if (version > latest) {
      throw new UnsupportedError(
        `the tracking database ${driver.location} has schema version ${version}, newer than this ${packageName} knows (${latest}): upgrade the package`,
        { path: driver.location, expected: `version ${latest} or older`, found: `version ${version}` },
      );
    }
    for (const migration of migrations.slice(version)) {
      for (const statement of migration.statements) await s.run(statement);
      await s.run('INSERT INTO ckpt_schema (version, applied_at) VALUES (?, ?)', [migration.version, Date.now()]);
    }
    return version;
  });
}

/** For read-only use: the database's version, which must be the last one (nothing is changed). */
export async function schemaVersion(
  driver: SqlDriver,
  migrations: readonly Migration[],
  packageName: string,
): Promise<number> {
  const latest = migrations.length;
  const version = await driver.session(async (s) => {
    try {
      return await currentVersion(s);
    } catch (error) {
      if (driver.classify(error).retry) throw error;
      return 0; // no ckpt_schema table
    }
  });
  if (version !== latest) {
    throw new UnsupportedError(
      version === 0
        ? `${driver.location} holds no ckpt tracking tables yet: open it once for writing (a run, or ckpt db copy)`
        : `${driver.location} has schema version ${version}, and this ${packageName} reads version ${latest}: ${version < latest ? 'open it once for writing to upgrade it' : 'upgrade the package'}`,
      { path: driver.location, expected: `version ${latest}`, found: `version ${version}` },
    );
  }
  return version;
}
