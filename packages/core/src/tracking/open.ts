/**
 * Opening whichever tracking database a path or URL names, through the
 * package that implements it (`@ckpt/tracker-sqlite`, `-postgres`, `-mysql`),
 * loaded only when used: a user installs only the tracker they need.
 */
import { existsSync } from 'node:fs';
import { DatabaseError, NotFoundError } from '../errors.js';
import type { ConnectTracking, TrackingDatabase } from './database.js';
import { type DatabaseLocation, parseDatabaseLocation } from './url.js';

export interface OpenTrackingOptions {
  /** Only read: SQLite opens the file read-only; servers are not migrated. */
  readonly?: boolean;
  /** Refuse a SQLite file that does not exist (instead of creating it). Default: `readonly`. */
  mustExist?: boolean;
  /** Options passed through to the tracker's `connect` (pool size, batch size, ...). */
  connect?: Record<string, unknown>;
  /** How a tracker package is loaded (default: `import(name)`). */
  load?: (packageName: string) => Promise<{ connect?: ConnectTracking }>;
}

async function loadTracker(location: DatabaseLocation, options: OpenTrackingOptions): Promise<ConnectTracking> {
  let loaded: { connect?: ConnectTracking };
  try {
    loaded = await (options.load ?? ((name: string) => import(name)))(location.packageName);
  } catch (error) {
    if ((error as { code?: string })?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new DatabaseError(`${location.display} needs ${location.packageName}: npm install ${location.packageName}`, {
      code: 'CKPT_DATABASE_URL',
      cause: error,
    });
  }
  if (typeof loaded.connect !== 'function') {
    throw new DatabaseError(`${location.packageName} has no connect() export`, { code: 'CKPT_DATABASE_URL' });
  }
  return loaded.connect;
}

/** Opens the tracking database `url` names: a path, `sqlite://`, `postgres://` or `mysql://`. */
export async function openTrackingDatabase(url: string, options: OpenTrackingOptions = {}): Promise<TrackingDatabase> {
  const location = parseDatabaseLocation(url);
  if (location.kind === 'sqlite' && (options.mustExist ?? options.readonly) && location.target !== ':memory:') {
    if (!existsSync(location.target)) {
      throw new NotFoundError(`no tracking database at ${location.display}`, {
        path: location.target,
        expected:
          'a database a tracker wrote: pass --database, or set tracker.database (a file or a postgres:// or mysql:// URL)',
      });
    }
  }
  const connect = await loadTracker(location, options);
  return connect(location.kind === 'sqlite' ? location.target : url, {
    ...options.connect,
    ...(options.readonly ? { readonly: true } : {}),
  });
}
