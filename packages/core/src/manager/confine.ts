/**
 * Every file the manager reads, writes or deletes for a record stays inside
 * the real experiment folder. A record's file comes from the index, which may
 * come from someone else, and the folder may hold symbolic links: a link to a
 * folder outside must not turn a delete in here into a delete out there, and
 * a link to `/etc/passwd` must not be verified, exported or backed up.
 */
import { lstatSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { FormatError } from '../errors.js';

function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync.native(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw error;
  }
}

function outside(folder: string, file: string, real: string, label: string): FormatError {
  return new FormatError(
    `${file} leads outside ${label} ${folder} (to ${real}, through a symbolic link): refused, nothing outside the folder is read, written or deleted`,
    { path: join(folder, file), found: real, expected: `a file inside ${folder}` },
  );
}

/**
 * The path to read `file` (relative to `folder`) through: its real path when it
 * exists, which must be inside the real folder; else the joined path, whose
 * nearest existing folder must be inside (the caller then sees the file missing).
 */
export function readablePath(folder: string, file: string, label = 'the experiment folder'): string {
  const root = realpathOrUndefined(folder);
  const full = join(folder, file);
  if (root === undefined) return full; // no folder yet: nothing to lead anywhere
  const real = realpathOrUndefined(full);
  if (real !== undefined) {
    if (!isInside(root, real)) throw outside(folder, file, real, label);
    return real;
  }
  return writablePath(folder, file, label);
}

/**
 * The path to create, replace or delete `file` at: its folder's real path
 * (which must be inside the real experiment folder) joined with its own name.
 * A link in the last place is itself deleted or replaced, never what it points to.
 */
export function writablePath(folder: string, file: string, label = 'the experiment folder'): string {
  const root = realpathOrUndefined(folder);
  const full = join(folder, file);
  if (root === undefined) return full; // no folder yet: nothing to lead anywhere
  let parent = dirname(full);
  let rest = basename(full);
  // The nearest folder that exists decides where the path really goes.
  for (;;) {
    const real = realpathOrUndefined(parent);
    if (real !== undefined) {
      if (!isInside(root, real)) throw outside(folder, file, join(real, rest), label);
      return join(real, rest);
    }
    if (dirname(parent) === parent || relative(folder, parent).startsWith('..')) return full;
    rest = join(basename(parent), rest);
    parent = dirname(parent);
  }
}

/**
 * The same checks for many files of one folder, as recovery makes them on
 * every open: the folder's real path is resolved once, and a plain file
 * directly in it costs one `lstat` (no link, so it is inside), so checking
 * 200,000 records takes a fraction of a second.
 */
export class Confinement {
  readonly #root: string | undefined;

  constructor(
    readonly folder: string,
    readonly label = 'the experiment folder',
  ) {
    this.#root = realpathOrUndefined(folder);
  }

  /** The file's path and size when it exists, undefined when it does not; FormatError when it leads outside. */
  stat(file: string): { path: string; size: number } | undefined {
    const full = join(this.folder, file);
    if (this.#root !== undefined && !file.includes('/')) {
      const info = lstatSync(full, { throwIfNoEntry: false });
      if (info === undefined) return undefined;
      if (info.isFile()) return { path: full, size: info.size };
    }
    const path = readablePath(this.folder, file, this.label);
    const info = statSync(path, { throwIfNoEntry: false });
    return info ? { path, size: info.size } : undefined;
  }

  /** The path to delete `file` at, or undefined when nothing is there; FormatError when it leads outside. */
  removable(file: string): string | undefined {
    const full = join(this.folder, file);
    if (!file.includes('/')) return lstatSync(full, { throwIfNoEntry: false }) ? full : undefined; // a link goes, not its target
    const path = writablePath(this.folder, file, this.label);
    return lstatSync(path, { throwIfNoEntry: false }) ? path : undefined;
  }
}
