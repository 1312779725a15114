/**
 * @ckpt/tracker-mysql: experiment tracking in a MySQL or MariaDB database that a
 * team's runs share. `connect('mysql://user@host/db')` gives core's
 * TrackingDatabase (the engine is @ckpt/tracker-sql).
 */
import { CkptError, type ConnectTracking, DatabaseError, parseDatabaseLocation } from '@ckpt/core';
import { migrate, SqlTracking, type SqlTrackingOptions, schemaVersion } from '@ckpt/tracker-sql';
import { MysqlDriver, type MysqlOptions } from './driver.js';
import { MIGRATIONS } from './schema.js';

export { MysqlDriver, type MysqlOptions } from './driver.js';
export { MIGRATIONS, SCHEMA_VERSION } from './schema.js';

export type MysqlTrackingOptions = MysqlOptions & SqlTrackingOptions;

/** Opens the database a `mysql://` URL names, creating or upgrading its tables. */
export const connect: ConnectTracking<MysqlTrackingOptions> = async (url, options = {}) => {
  const location = parseDatabaseLocation(url);
  if (location.kind !== 'mysql') {
    throw new DatabaseError(`@ckpt/tracker-mysql opens mysql:// URLs, not ${location.display}`, {
      code: 'CKPT_DATABASE_URL',
    });
  }
  const driver = new MysqlDriver(location.target, location.display, options);
  try {
    const opening = options.readonly
      ? schemaVersion(driver, MIGRATIONS, '@ckpt/tracker-mysql')
      : migrate(driver, MIGRATIONS, '@ckpt/tracker-mysql');
    const upgradedFrom = await opening.catch((error) => {
      throw error instanceof CkptError ? error : driver.classify(error).error;
    });
    return new SqlTracking(driver, upgradedFrom, options);
  } catch (error) {
    await driver.close().catch(() => undefined);
    throw error;
  }
};
