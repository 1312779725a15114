/**
 * The local checkpoint cache: a folder of files under their names (seed
 * 002's flat layout), with what we know of each download in
 * `.ckpt-meta/<name>.json` and a CACHEDIR.TAG so backup tools skip it.
 */
import { type Dirent, readdirSync, rmSync, statSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { InvalidArgumentError, writablePath } from '@ckpt/core';
import { sha256File, TEMP_SUFFIX, writeFileAtomic } from '@ckpt/native';

export const META_FOLDER = '.ckpt-meta';
/** Folders deeper than this under the cache are not walked. */
const MAX_DEPTH = 32;
export const LOCK_FOLDER = '.ckpt-locks';

const TAG = `Signature: 8a477f597d28d172789f06886806bc55
# This file is a cache directory tag created by ckpt (@ckpt/resolver-b2).
# For information about cache directory tags, see https://bford.info/cachedir/
`;

/** What the cache knows of a downloaded file. */
export interface CacheRecord {
  /** `s3://bucket/key` it came from. */
  source: string;
  size: number;
  sha256: string;
  etag?: string;
  versionId?: string;
  downloadedAt: string;
}

const MAX_RECORD_BYTES = 64 * 1024;
const isText = (v: unknown, limit = 4096): v is string => typeof v === 'string' && v.length <= limit;

/** A cache record from its JSON text, with only the known fields, or undefined when it is not one. */
export function parseCacheRecord(text: string): CacheRecord | undefined {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { source, size, sha256, downloadedAt, etag, versionId } = value;
  const wellFormed =
    isText(source) &&
    Number.isSafeInteger(size) &&
    (size as number) >= 0 &&
    typeof sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(sha256) &&
    isText(downloadedAt, 64) &&
    (etag === undefined || isText(etag)) &&
    (versionId === undefined || isText(versionId));
  if (!wellFormed) return undefined;
  return {
    source,
    size: size as number,
    sha256,
    downloadedAt,
    ...(etag === undefined ? {} : { etag }),
    ...(versionId === undefined ? {} : { versionId }),
  };
}

export interface CacheEntry {
  name: string;
  path: string;
  size: number;
  /** When it was last resolved (or written). */
  lastUsed: Date;
  record: CacheRecord | undefined;
}

export interface VerifyEntry {
  name: string;
  status: 'ok' | 'corrupted' | 'unknown';
  expected?: string;
  actual?: string;
}

/** A relative name inside the cache, refusing anything that would leave it. */
export function checkName(name: string): string {
  const clean = name.replace(/\\/g, '/').replace(/^\.\/+/, '');
  if (clean === '' || clean.startsWith('/') || clean.split('/').some((part) => part === '..' || part === '')) {
    throw new InvalidArgumentError(`${JSON.stringify(name)} is not a file name inside the cache`, {
      expected: 'a name like "convnext_tiny.pth" or "sub/folder/model.pth"',
    });
  }
  if (clean.split('/').some((part) => part.startsWith('.ckpt-') || part.endsWith(TEMP_SUFFIX))) {
    throw new InvalidArgumentError(`${JSON.stringify(name)} uses a name the cache keeps for itself`);
  }
  return clean;
}

export class Cache {
  #tagged = false;

  constructor(readonly dir: string) {}

  /** Where `name` lives: inside the real cache folder, never through a link that leads out of it. */
  pathOf(name: string): string {
    return writablePath(this.dir, checkName(name), 'the cache');
  }

  metaPathOf(name: string): string {
    return writablePath(this.dir, `${META_FOLDER}/${checkName(name)}.json`, 'the cache');
  }

  /** Creates the folder (with its CACHEDIR.TAG) for `name`. */
  async prepare(name: string): Promise<void> {
    await mkdir(dirname(this.pathOf(name)), { recursive: true });
    if (!this.#tagged) {
      await writeFile(join(this.dir, 'CACHEDIR.TAG'), TAG, { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      this.#tagged = true;
    }
  }

  /** What the cache knows of `name`, if its record is there and well formed (a malformed one counts as none). */
  async record(name: string): Promise<CacheRecord | undefined> {
    let text: string;
    try {
      const path = this.metaPathOf(name);
      // A record is a few hundred bytes: anything larger is not one, and is not read.
      if ((await stat(path)).size > MAX_RECORD_BYTES) return undefined;
      text = await readFile(path, 'utf8');
    } catch {
      return undefined;
    }
    return parseCacheRecord(text);
  }

  async remember(name: string, record: CacheRecord): Promise<void> {
    const path = this.metaPathOf(name);
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, [Buffer.from(`${JSON.stringify(record, null, 2)}\n`)], { fsync: false });
  }

  /** Marks a file as just used (its access time), which pruning goes by. */
  async touch(name: string): Promise<void> {
    const path = this.pathOf(name);
    const info = await stat(path);
    await utimes(path, new Date(), info.mtime);
  }

  /**
   * Every file in the cache (not its own bookkeeping). Links are not
   * followed, so a link to a folder outside (or two links to `.`) can neither
   * list nor prune anything outside, nor loop; folders deeper than 32 levels
   * are not walked.
   */
  async list(): Promise<CacheEntry[]> {
    const entries: CacheEntry[] = [];
    const folders: Array<[string, number]> = [[this.dir, 0]];
    while (folders.length > 0) {
      const [folder, depth] = folders.pop() as [string, number];
      let names: string[];
      try {
        names = await readdir(folder);
      } catch {
        continue;
      }
      for (const entry of names) {
        if (entry.startsWith('.ckpt-') || entry.endsWith(TEMP_SUFFIX) || entry === 'CACHEDIR.TAG') continue;
        const path = join(folder, entry);
        const info = await lstat(path).catch(() => undefined);
        if (!info || info.isSymbolicLink()) continue;
        if (info.isDirectory()) {
          if (depth < MAX_DEPTH) folders.push([path, depth + 1]);
          continue;
        }
        if (!info.isFile()) continue;
        const name = relative(this.dir, path).split(sep).join('/');
        entries.push({ name, path, size: info.size, lastUsed: info.atime, record: await this.record(name) });
      }
    }
    return entries.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Total bytes of the cached files. */
  async size(): Promise<number> {
    return (await this.list()).reduce((sum, e) => sum + e.size, 0);
  }

  /** Re-hashes every file that has a record (`unknown`: put there by hand, nothing to check against). */
  async verify(): Promise<VerifyEntry[]> {
    const out: VerifyEntry[] = [];
    for (const entry of await this.list()) {
      if (!entry.record) {
        out.push({ name: entry.name, status: 'unknown' });
        continue;
      }
      const actual = await sha256File(entry.path);
      out.push({
        name: entry.name,
        status: actual === entry.record.sha256 && entry.size === entry.record.size ? 'ok' : 'corrupted',
        expected: entry.record.sha256,
        actual,
      });
    }
    return out;
  }

  /** Deletes files unused for `olderThanMs`, then the least recently used until the cache fits `maxBytes`. */
  async prune(options: { olderThanMs?: number; maxBytes?: number; dryRun?: boolean }): Promise<CacheEntry[]> {
    const entries = (await this.list()).sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime());
    const doomed: CacheEntry[] = [];
    const cutoff = options.olderThanMs === undefined ? undefined : Date.now() - options.olderThanMs;
    let total = entries.reduce((sum, e) => sum + e.size, 0);
    for (const entry of entries) {
      const old = cutoff !== undefined && entry.lastUsed.getTime() < cutoff;
      const over = options.maxBytes !== undefined && total > options.maxBytes;
      if (!old && !over) continue;
      doomed.push(entry);
      total -= entry.size;
    }
    if (!options.dryRun) {
      for (const entry of doomed) {
        await rm(entry.path, { force: true });
        await rm(this.metaPathOf(entry.name), { force: true });
      }
    }
    return doomed;
  }

  /** Removes temporaries of downloads that died (older than `minAgeMs`: a live download's is younger). */
  removeStaleTemporaries(minAgeMs = 24 * 3600_000): string[] {
    const removed: string[] = [];
    const walk = (folder: string) => {
      let entries: Dirent[];
      try {
        entries = readdirSync(folder, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const path = join(folder, entry.name);
        if (entry.isDirectory()) {
          if (!entry.name.startsWith('.ckpt-')) walk(path);
        } else if (entry.name.endsWith(TEMP_SUFFIX)) {
          const info = statSync(path, { throwIfNoEntry: false });
          if (info && Date.now() - info.mtimeMs > minAgeMs) {
            rmSync(path, { force: true });
            removed.push(path);
          }
        }
      }
    };
    walk(this.dir);
    return removed;
  }
}
