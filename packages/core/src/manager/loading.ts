/**
 * Reading checkpoints back: load (gated by hooks, optionally verified),
 * inspect (headers, cached) and resume (the newest checkpoint that verifies).
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { IntegrityError, NotFoundError, UnsupportedError, VetoedError } from '../errors.js';
import type { Inspection } from '../storage.js';
import type { StateTree } from '../tree.js';
import type { ManagerContext } from './context.js';
import { gunzipFile, makeStagingDir } from './files.js';
import { verifyOne } from './integrity.js';
import type { Selector } from './ranking.js';
import type { CheckpointRecord } from './record.js';

export interface LoadOptions {
  /** Check the SHA-256 before reading (default: the manager's `integrity.verifyOnLoad`). */
  verifyIntegrity?: boolean;
  /** Copy tensors out of the file instead of zero-copy views. */
  copy?: boolean;
}

export interface LoadedCheckpoint {
  record: CheckpointRecord;
  state: StateTree;
  metadata: Record<string, string>;
}

export async function load(ctx: ManagerContext, selector: Selector, options: LoadOptions): Promise<LoadedCheckpoint> {
  const record = await ctx.record(selector);
  const verify = options.verifyIntegrity ?? ctx.o.verifyOnLoad;
  await ctx.gate(
    'beforeLoad',
    { experiment: ctx.o.experiment, record: ctx.info(record), verifyIntegrity: verify },
    `loading ${record.id}`,
  );
  if (record.status === 'missing' && !existsSync(record.path)) {
    throw new NotFoundError(`checkpoint ${record.id} is missing: ${record.path}`, {
      path: record.path,
      ...(record.backup ? { expected: 'the file; a backup exists: call restore()' } : {}),
    });
  }
  if (verify) {
    const result = await verifyOne(ctx, record);
    if (result.status !== 'ok') {
      throw new IntegrityError(`checkpoint ${record.id} is ${result.status}: its SHA-256 does not match the record`, {
        path: record.path,
        expected: record.sha256,
        found: result.actual ?? 'no file',
      });
    }
  }
  const { state, metadata } = await readCheckpoint(ctx, record, options.copy ?? false);
  await ctx.emit('afterLoad', { experiment: ctx.o.experiment, record: ctx.info(record), state });
  return { record, state, metadata };
}

/** Reads a record's file through its backend (decompressing into a staging folder first when needed). */
export async function readCheckpoint(
  ctx: ManagerContext,
  record: CheckpointRecord,
  copy: boolean,
): Promise<{ state: StateTree; metadata: Record<string, string> }> {
  const backend = ctx.backendFor(record.format);
  const path = ctx.readable(record.file);
  if (!record.compression) {
    const loaded = await backend.load(path, { copy });
    return { state: loaded.state, metadata: loaded.metadata };
  }
  const staging = await makeStagingDir(ctx.folder);
  try {
    const plain = join(staging, basename(record.file, '.gz'));
    await gunzipFile(path, plain);
    const loaded = await backend.load(plain, { copy: true });
    return { state: loaded.state, metadata: loaded.metadata };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** A checkpoint's header: names, dtypes, shapes, metadata. Cached by id and digest. */
export async function inspect(ctx: ManagerContext, selector: Selector): Promise<Inspection> {
  const record = await ctx.record(selector);
  const key = `${record.id}:${record.sha256}`;
  const cached = ctx.inspections.get(key);
  if (cached) return cached;
  if (record.compression) {
    throw new UnsupportedError(`checkpoint ${record.id} is compressed: load it to see its tensors`);
  }
  const inspection = await ctx.backendFor(record.format).inspect(ctx.readable(record.file));
  ctx.inspections.set(key, inspection);
  return inspection;
}

/**
 * The latest checkpoint that verifies, loaded, so a crashed run continues.
 * Corrupted or missing ones are skipped with a warning. Null when none is usable.
 */
export async function resume(ctx: ManagerContext, options: { copy?: boolean }): Promise<LoadedCheckpoint | null> {
  const index = await ctx.index();
  const newestFirst = [...index.checkpoints].sort((a, b) => b.sequence - a.sequence);
  for (const stored of newestFirst) {
    const record = ctx.withPath(stored);
    const result = await verifyOne(ctx, record);
    if (result.status !== 'ok') {
      ctx.o.warn(`resume: skipping checkpoint ${record.id}: ${result.status}`);
      continue;
    }
    try {
      return await load(ctx, record.id, { copy: options.copy ?? false, verifyIntegrity: false });
    } catch (error) {
      if (error instanceof VetoedError) throw error;
      ctx.o.warn(`resume: skipping checkpoint ${record.id}: ${(error as Error).message}`);
    }
  }
  return null;
}
