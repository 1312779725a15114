/** Opening a server tracker: the URL checked, the driver made, the schema migrated (or only checked, read-only). */
import { CkptError, DatabaseError, parseDatabaseLocation, type TrackingDatabase } from '@ckpt/core';
import { SqlTracking, type SqlTrackingOptions } from './database.js';
import type { SqlDriver } from './driver.js';
import { type Migration, migrate, schemaVersion } from './migrate.js';

export interface ServerTracker<Options> {
  /** `postgres` or `mysql`: the URL kind this package opens. */
  kind: 'postgres' | 'mysql';
  packageName: string;
  migrations: readonly Migration[];
  /** A driver for the URL (`display` is the URL with its password masked). */
  driver: (url: string, display: string, options: Options) => SqlDriver;
}

export async function connectServer<Options>(
  tracker: ServerTracker<Options>,
  url: string,
  options: Options & SqlTrackingOptions & { readonly?: boolean },
): Promise<TrackingDatabase> {
  const location = parseDatabaseLocation(url);
  if (location.kind !== tracker.kind) {
    throw new DatabaseError(`${tracker.packageName} opens ${tracker.kind}:// URLs, not ${location.display}`, {
      code: 'CKPT_DATABASE_URL',
    });
  }
  const driver = tracker.driver(location.target, location.display, options);
  try {
    const opening = options.readonly
      ? schemaVersion(driver, tracker.migrations, tracker.packageName)
      : migrate(driver, tracker.migrations, tracker.packageName);
    const upgradedFrom = await opening.catch((error) => {
      throw error instanceof CkptError ? error : driver.classify(error).error;
    });
    return new SqlTracking(driver, upgradedFrom, options);
  } catch (error) {
    await driver.close().catch(() => undefined);
    throw error;
  }
}
