/**
 * File moves the manager makes: staging folders, renames that are flushed,
 * verified copies, stable hard links, gzip. Every destination is reached by
 * a rename, so no reader ever sees a partial file under a final name.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, readdir, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import {
  fromNodeError,
  processAlive,
  processStartTime,
  processTableIdentity,
  renameDurably,
  Sha256,
  sha256File,
  tempPathFor,
} from '@ckpt/native';
import { IntegrityError } from '../errors.js';

/** Where saves are written before they are committed, inside the experiment folder. */
export const STAGING_FOLDER = '.ckpt-staging';

// Not the bare host name: containers may share one, and their pids (see processTableIdentity).
const host = processTableIdentity().replace(/[^A-Za-z0-9.]/g, '_');

/** The start of a multi-process save's staging folder name (`gather+<checkpoint id>`). */
export const GATHERING = 'gather+';

/** This process, as `<host>-<pid>-<start time>`: the owner of its staging folder and save intents. */
export const OWNER = `${host}-${process.pid}-${processStartTime(process.pid)}`;

/** True when `owner` may still be running: another machine's, or a live process of this one started at that time. */
export function ownerAlive(owner: string): boolean {
  const match = /^(.*)-(\d+)-(\d+)$/.exec(owner);
  if (!match) return false;
  const [, ownerHost, pid, started] = match;
  if (ownerHost !== host) return true; // another machine: never take its work away
  return processAlive(Number(pid), started);
}

/**
 * Runs file work whose system errors (a full disk, a denied permission) must
 * reach the caller typed, naming `path`, rather than as bare Node errors.
 */
async function systemErrors<T>(path: string, op: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw fromNodeError(error, path, op);
  }
}

/** A fresh staging folder named after this process, so recovery knows whether its owner still runs. */
export async function makeStagingDir(folder: string): Promise<string> {
  const dir = join(folder, STAGING_FOLDER, `${OWNER}+${randomBytes(4).toString('hex')}`);
  await systemErrors(dir, 'create', () => mkdir(dir, { recursive: true }));
  return dir;
}

/** True when a staging folder's owner may still be writing into it. */
export function stagingOwnerAlive(name: string): boolean {
  const plus = name.lastIndexOf('+');
  return plus > 0 && ownerAlive(name.slice(0, plus));
}

/**
 * Removes a file, a link (never what it points to) or an empty folder (a
 * sharded checkpoint's, once its files are gone). A folder that still holds
 * something is left alone: nothing is removed recursively on the word of an index.
 */
export async function removeEntry(path: string): Promise<void> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return;
  if (!info.isDirectory()) {
    await rm(path, { force: true });
    return;
  }
  await rmdir(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST' && error.code !== 'ENOENT') throw error;
  });
}

/**
 * Staging folders whose owners are gone; a multi-process save's
 * (`gather+<id>`) when the index no longer lists it in `gathering`.
 */
export async function abandonedStagingDirs(folder: string, gathering: ReadonlySet<string>): Promise<string[]> {
  let names: string[];
  try {
    // Only a real folder: a link named like it may point anywhere, and what is in it gets removed.
    if (!(await lstat(join(folder, STAGING_FOLDER))).isDirectory()) return [];
    names = await readdir(join(folder, STAGING_FOLDER));
  } catch {
    return [];
  }
  const abandoned = (name: string) =>
    name.startsWith(GATHERING) ? !gathering.has(name.slice(GATHERING.length)) : !stagingOwnerAlive(name);
  return names.filter(abandoned).map((name) => join(folder, STAGING_FOLDER, name));
}

/**
 * Makes `path` name the same file as `target` (a hard link: checkpoint files
 * are never changed in place, so this costs nothing), or a copy where links
 * are not possible. Replaces `path` atomically.
 */
export async function linkAtomically(target: string, path: string, fsync: boolean): Promise<void> {
  const [a, b] = await Promise.all([stat(target), stat(path).catch(() => undefined)]);
  if (b && a.ino === b.ino && a.dev === b.dev) return;
  const temp = tempPathFor(path);
  try {
    await systemErrors(path, 'write', () => link(target, temp).catch(() => copyFile(target, temp)));
    await renameDurably(temp, path, { fsync });
  } finally {
    await rm(temp, { force: true });
  }
}

/**
 * Copies `source` to `destination` through a temporary beside it, checks the
 * copy's SHA-256 against `expected` and only then renames it into place.
 */
export async function copyVerified(
  source: string,
  destination: string,
  expected: string,
  fsync: boolean,
): Promise<{ size: number; sha256: string }> {
  await systemErrors(dirname(destination), 'create', () => mkdir(dirname(destination), { recursive: true }));
  const temp = tempPathFor(destination);
  try {
    await systemErrors(destination, 'write', async () => {
      await copyFile(source, temp);
      if (fsync) await flushFile(temp);
    });
    const sha256 = await sha256File(temp);
    if (sha256 !== expected) {
      throw new IntegrityError(`the copy of ${source} does not match its recorded SHA-256`, {
        path: source,
        expected,
        found: sha256,
      });
    }
    const { size } = await stat(temp);
    await renameDurably(temp, destination, { fsync });
    return { size, sha256 };
  } finally {
    await rm(temp, { force: true });
  }
}

function hashing(hasher: Sha256, counter: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hasher.update(chunk);
      counter.bytes += chunk.length;
      done(null, chunk);
    },
  });
}

/** Gzips `source` into `destination`, returning the compressed file's size and SHA-256 from the same pass. */
export async function gzipFile(
  source: string,
  destination: string,
  fsync: boolean,
): Promise<{ size: number; sha256: string }> {
  const hasher = new Sha256();
  const counter = { bytes: 0 };
  const temp = tempPathFor(destination);
  try {
    await systemErrors(destination, 'write', async () => {
      await pipeline(
        createReadStream(source),
        createGzip({ level: 6 }),
        hashing(hasher, counter),
        createWriteStream(temp),
      );
      if (fsync) await flushFile(temp);
    });
    await renameDurably(temp, destination, { fsync });
  } finally {
    await rm(temp, { force: true });
  }
  return { size: counter.bytes, sha256: hasher.digest() };
}

export async function gunzipFile(source: string, destination: string): Promise<void> {
  await systemErrors(destination, 'write', () =>
    pipeline(createReadStream(source), createGunzip(), createWriteStream(destination)),
  );
}

async function flushFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  await handle.sync().finally(() => handle.close());
}
