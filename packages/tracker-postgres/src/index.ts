/**
 * @ckpt/tracker-postgres: experiment tracking in a PostgreSQL database that a
 * team's runs share. `connect('postgres://user@host/db')` gives core's
 * TrackingDatabase (the engine is @ckpt/tracker-sql).
 */
import { CkptError, type ConnectTracking, DatabaseError, parseDatabaseLocation } from '@ckpt/core';
import { migrate, SqlTracking, type SqlTrackingOptions, schemaVersion } from '@ckpt/tracker-sql';
import { PostgresDriver, type PostgresOptions } from './driver.js';
import { MIGRATIONS } from './schema.js';

export { PostgresDriver, type PostgresOptions } from './driver.js';
export { MIGRATIONS, SCHEMA_VERSION } from './schema.js';

export type PostgresTrackingOptions = PostgresOptions & SqlTrackingOptions;

/** Opens the database a `postgres://` URL names, creating or upgrading its tables. */
export const connect: ConnectTracking<PostgresTrackingOptions> = async (url, options = {}) => {
  const location = parseDatabaseLocation(url);
  if (location.kind !== 'postgres') {
    throw new DatabaseError(`@ckpt/tracker-postgres opens postgres:// URLs, not ${location.display}`, {
      code: 'CKPT_DATABASE_URL',
    });
  }
  const driver = new PostgresDriver(location.target, location.display, options);
  try {
    const opening = options.readonly
      ? schemaVersion(driver, MIGRATIONS, '@ckpt/tracker-postgres')
      : migrate(driver, MIGRATIONS, '@ckpt/tracker-postgres');
    const upgradedFrom = await opening.catch((error) => {
      throw error instanceof CkptError ? error : driver.classify(error).error;
    });
    return new SqlTracking(driver, upgradedFrom, options);
  } catch (error) {
    await driver.close().catch(() => undefined);
    throw error;
  }
};
