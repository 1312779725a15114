/**
 * A folder's entries with their kinds and sizes, listed in one pass: the
 * native path makes one `fstatat` per entry on a worker thread; the
 * JavaScript path an `lstat` per file. Links are reported, never followed.
 */
import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fromNodeError } from './errors.js';

export type EntryKind = 'file' | 'folder' | 'link' | 'other';

/** The kinds in the order of the native table's codes (ckpt_io::folder::EntryKind). */
const KINDS: readonly EntryKind[] = ['file', 'folder', 'link', 'other'];

/** The flat arrays the binding returns: entry `i` is `names[nameEnds[i-1]..nameEnds[i]]`. */
export interface FolderTable {
  names: string;
  nameEnds: Uint32Array;
  kinds: Uint8Array;
  sizes: Float64Array;
}

/** A folder's entries, looked up by name. */
export class FolderListing {
  /** Entry names in the order listed (the file system's, not sorted). */
  readonly names: readonly string[];
  readonly #index = new Map<string, number>();

  constructor(private readonly table: FolderTable) {
    const names: string[] = new Array(table.nameEnds.length);
    let start = 0;
    for (let i = 0; i < names.length; i++) {
      const end = table.nameEnds[i] as number;
      const name = table.names.slice(start, end);
      names[i] = name;
      this.#index.set(name, i);
      start = end;
    }
    this.names = names;
  }

  has(name: string): boolean {
    return this.#index.has(name);
  }

  /** What `name` is, or undefined when the folder had no such entry. */
  kind(name: string): EntryKind | undefined {
    const i = this.#index.get(name);
    return i === undefined ? undefined : KINDS[this.table.kinds[i] as number];
  }

  /** The size of the file `name`, or undefined when it is not a plain file. */
  fileSize(name: string): number | undefined {
    const i = this.#index.get(name);
    return i !== undefined && this.table.kinds[i] === 0 ? this.table.sizes[i] : undefined;
  }
}

function kindOf(entry: Dirent | { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): number {
  if (entry.isSymbolicLink()) return 2;
  if (entry.isFile()) return 0;
  if (entry.isDirectory()) return 1;
  return 3;
}

/** The JavaScript twin of the native scan. */
export async function scanFolderInJavaScript(path: string): Promise<FolderTable> {
  let entries: Dirent[];
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch (error) {
    throw fromNodeError(error, path, 'read folder');
  }
  const kinds = new Uint8Array(entries.length);
  const sizes = new Float64Array(entries.length);
  const nameEnds = new Uint32Array(entries.length);
  let names = '';
  for (const [i, entry] of entries.entries()) {
    let kind = kindOf(entry);
    if (kind === 0) {
      // The listing's type may be stale or unknown on some file systems: lstat decides.
      const info = await lstat(join(path, entry.name)).catch(() => undefined);
      kind = info ? kindOf(info) : 3;
      if (kind === 0 && info) sizes[i] = info.size;
    }
    kinds[i] = kind;
    names += entry.name;
    nameEnds[i] = names.length;
  }
  return { names, nameEnds, kinds, sizes };
}
