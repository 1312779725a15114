/**
 * @ckpt/tracker-mysql: experiment tracking in a MySQL or MariaDB database that
 * a team's runs share. `connect('mysql://user@host/db')` gives core's
 * TrackingDatabase (the engine is @ckpt/tracker-sql).
 */
import type { ConnectTracking } from '@ckpt/core';
import { connectServer, type SqlTrackingOptions } from '@ckpt/tracker-sql';
import { MysqlDriver, type MysqlOptions } from './driver.js';
import { MIGRATIONS } from './schema.js';

export { MysqlDriver, type MysqlOptions } from './driver.js';
export { MIGRATIONS, SCHEMA_VERSION } from './schema.js';

export type MysqlTrackingOptions = MysqlOptions & SqlTrackingOptions;

/** Opens the database a `mysql://` (or `mariadb://`) URL names, creating or upgrading its tables (`readonly`: only checking them). */
export const connect: ConnectTracking<MysqlTrackingOptions> = (url, options = {}) =>
  connectServer(
    {
      kind: 'mysql',
      packageName: '@ckpt/tracker-mysql',
      migrations: MIGRATIONS,
      driver: (target, display, opts) => new MysqlDriver(target, display, opts),
    },
    url,
    options,
  );
