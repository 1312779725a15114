/**
 * @ckpt/tracker-postgres: experiment tracking in a PostgreSQL database that a
 * team's runs share. `connect('postgres://user@host/db')` gives core's
 * TrackingDatabase (the engine is @ckpt/tracker-sql).
 */
import type { ConnectTracking } from '@ckpt/core';
import { connectServer, type SqlTrackingOptions } from '@ckpt/tracker-sql';
import { PostgresDriver, type PostgresOptions } from './driver.js';
import { MIGRATIONS } from './schema.js';

export { PostgresDriver, type PostgresOptions } from './driver.js';
export { MIGRATIONS, SCHEMA_VERSION } from './schema.js';

export type PostgresTrackingOptions = PostgresOptions & SqlTrackingOptions;

/** Opens the database a `postgres://` URL names, creating or upgrading its tables (`readonly`: only checking them). */
export const connect: ConnectTracking<PostgresTrackingOptions> = (url, options = {}) =>
  connectServer(
    {
      kind: 'postgres',
      packageName: '@ckpt/tracker-postgres',
      migrations: MIGRATIONS,
      driver: (target, display, opts) => new PostgresDriver(target, display, opts),
    },
    url,
    options,
  );
