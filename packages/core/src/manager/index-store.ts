/**
 * The experiment index (`checkpoint_metadata.json`): read, validated,
 * changed under an inter-process lock, and written atomically.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { lockFile, writeFileAtomic } from '@ckpt/native';
import { FormatError } from '../errors.js';
import { INDEX_VERSION, type IndexFile, type StoredRecord } from './record.js';

export const LOCK_FILE = '.ckpt.lock';

export class IndexStore {
  readonly path: string;
  readonly lockPath: string;
  /** The index as last read or written, with the file identity it had: skips re-reading an unchanged file. */
  #last: { identity: string; index: IndexFile } | undefined;

  constructor(
    readonly folder: string,
    indexFile: string,
    private readonly options: { experiment: string; model: string; fsync: boolean; lockTimeoutMs: number },
  ) {
    this.path = join(folder, indexFile);
    this.lockPath = join(folder, LOCK_FILE);
  }

  /** The index on disk, or an empty one when there is none yet. */
  async read(): Promise<IndexFile> {
    const identity = await this.#identity();
    if (identity === undefined) return this.#empty();
    if (this.#last?.identity === identity) return this.#last.index;
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return this.#empty();
      throw error;
    }
    const index = parseIndex(text, this.path);
    this.#last = { identity, index };
    return index;
  }

  /** Every write renames a new file into place, so inode, size and times identify a version. */
  async #identity(): Promise<string | undefined> {
    const info = await stat(this.path, { bigint: true }).catch(() => undefined);
    return info && `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  }

  /** Writes the index atomically (temporary, flush, rename, folder flush). */
  async write(index: IndexFile): Promise<void> {
    const text = `${JSON.stringify(index, keepNonFinite, 2)}\n`;
    this.#last = undefined;
    await writeFileAtomic(this.path, [Buffer.from(text)], { fsync: this.options.fsync });
    const identity = await this.#identity();
    if (identity) this.#last = { identity, index };
  }

  /** Forgets the remembered index (after a change that failed half-way). */
  forget(): void {
    this.#last = undefined;
  }

  /**
   * Runs `change` on a fresh read of the index while holding the lock, and
   * writes the index back unless `change` returns `{ write: false }`.
   */
  async update<T>(
    change: (index: IndexFile) => Promise<T> | T,
    write = true,
  ): Promise<{ index: IndexFile; result: T }> {
    const lock = await lockFile(this.lockPath, { timeoutMs: this.options.lockTimeoutMs });
    try {
      const index = await this.read();
      const result = await change(index);
      if (write) await this.write(index);
      return { index, result };
    } catch (error) {
      this.forget(); // `change` may have edited the remembered index before failing
      throw error;
    } finally {
      lock.release();
    }
  }

  #empty(): IndexFile {
    return {
      version: INDEX_VERSION,
      experiment: this.options.experiment,
      model: this.options.model,
      nextSequence: 1,
      checkpoints: [],
      deleting: [],
    };
  }
}

/** JSON has no NaN or infinity: metrics keep them as the strings "NaN", "Infinity", "-Infinity". */
function keepNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

function readMetrics(metrics: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(metrics)) {
    if (typeof value === 'number') out[name] = value;
    else if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') out[name] = Number(value);
  }
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses and checks an index file's text. */
export function parseIndex(text: string, path: string): IndexFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new FormatError(`the checkpoint index is not valid JSON: ${(error as Error).message}`, {
      path,
      expected: 'the JSON the CheckpointManager writes',
      cause: error,
    });
  }
  if (!isObject(value) || !Array.isArray(value.checkpoints)) {
    throw new FormatError('the checkpoint index has no `checkpoints` list', {
      path,
      expected: 'an object with `checkpoints`',
    });
  }
  if (typeof value.version !== 'number' || value.version > INDEX_VERSION) {
    throw new FormatError(`unsupported checkpoint index version ${String(value.version)}`, {
      path,
      expected: `version ${INDEX_VERSION} or older`,
      found: String(value.version),
    });
  }
  const checkpoints = value.checkpoints.map((record, i) => checkRecord(record, `${path} checkpoints[${i}]`));
  const highest = checkpoints.reduce((max, r) => Math.max(max, r.sequence), 0);
  return {
    version: INDEX_VERSION,
    experiment: String(value.experiment ?? ''),
    model: String(value.model ?? ''),
    ...(isObject(value.best) ? { best: value.best as IndexFile['best'] } : {}),
    nextSequence: Math.max(Number(value.nextSequence) || 1, highest + 1),
    checkpoints,
    deleting: Array.isArray(value.deleting) ? value.deleting.filter((f): f is string => typeof f === 'string') : [],
  };
}

function checkRecord(value: unknown, where: string): StoredRecord {
  const fail = (what: string): never => {
    throw new FormatError(`bad checkpoint record: ${what}`, { path: where });
  };
  if (!isObject(value)) return fail('not an object');
  for (const key of ['id', 'file', 'sha256', 'timestamp', 'format'] as const) {
    if (typeof value[key] !== 'string') fail(`\`${key}\` is not a string`);
  }
  if (typeof value.size !== 'number') fail('`size` is not a number');
  if (!isObject(value.metrics)) fail('`metrics` is not an object');
  const file = value.file as string;
  if (file.startsWith('/') || file.split('/').includes('..')) fail(`\`file\` ${file} leaves the experiment folder`);
  return {
    ...(value as unknown as StoredRecord),
    sequence: typeof value.sequence === 'number' ? value.sequence : 0,
    epoch: typeof value.epoch === 'number' ? value.epoch : null,
    step: typeof value.step === 'number' ? value.step : null,
    metrics: readMetrics(value.metrics as Record<string, unknown>),
    tags: Array.isArray(value.tags) ? value.tags.map(String) : [],
    isBest: value.isBest === true,
    isLatest: value.isLatest === true,
    protected: value.protected === true,
    status: value.status === 'missing' || value.status === 'corrupted' ? value.status : 'ok',
  };
}
