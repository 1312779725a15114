/**
 * Naming temporaries and renaming them into place durably: the one helper
 * every package uses, so that recovery recognises every temporary and a
 * rename survives a power loss when it must.
 */
import { randomBytes } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** What every temporary's name ends with (the Rust writer's too). */
export const TEMP_SUFFIX = '.ckpt-tmp';

/**
 * The temporary a file is written to before it is renamed over `target`:
 * `.<name>.<random>.ckpt-tmp` beside it, as the Rust writer names it. Every
 * package names its temporaries with this, so recovery finds them all.
 */
export function tempPathFor(target: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const random = Array.from(randomBytes(6), (b) => alphabet[b % alphabet.length]).join('');
  return join(dirname(target), `.${basename(target)}.${random}${TEMP_SUFFIX}`);
}

/** Flushes a folder's entries (a rename or a new file in it) to the disk. */
export async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Renames `from` to `to` and, with `fsync`, flushes the destination folder.
 * (The source folder is not flushed: if its entry came back after a power
 * loss, it would be a leftover temporary, which recovery removes.)
 */
export async function renameDurably(from: string, to: string, options: { fsync: boolean }): Promise<void> {
  await rename(from, to);
  if (options.fsync) await syncFolder(dirname(to));
}
