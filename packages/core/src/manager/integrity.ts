/**
 * Integrity: a checkpoint is ok when its file has the recorded size and
 * SHA-256; what a check finds is recorded (missing, corrupted, ok again).
 */
import { stat } from 'node:fs/promises';
import { sha256File, sha256Files } from '@ckpt/native';
import { FormatError } from '../errors.js';
import type { ManagerContext } from './context.js';
import type { Selector } from './ranking.js';
import type { CheckpointRecord, CheckpointStatus, StoredFile } from './record.js';
import { recordFiles } from './sets.js';

export interface VerifyResult {
  id: string;
  status: CheckpointStatus;
  expected: string;
  actual?: string;
  path: string;
  /** Why the file was not read, when it was refused (a link that leads outside the experiment folder). */
  problem?: string;
}

/** Checks one checkpoint, or every one with `'all'`, in order. */
export async function verify(ctx: ManagerContext, selector: Selector | 'all'): Promise<VerifyResult[]> {
  const records =
    selector === 'all' ? (await ctx.index()).checkpoints.map((r) => ctx.withPath(r)) : [await ctx.record(selector)];
  const results: VerifyResult[] = [];
  for (const record of records) results.push(await verifyOne(ctx, record));
  return results;
}

export async function verifyOne(ctx: ManagerContext, record: CheckpointRecord): Promise<VerifyResult> {
  const { o } = ctx;
  await ctx.emit('beforeIntegrityCheck', { experiment: o.experiment, record: ctx.info(record) });
  const result: VerifyResult = { id: record.id, status: 'ok', expected: record.sha256, path: record.path };
  const files = recordFiles(record);
  const found: Array<{ stored: StoredFile; path: string; size: number }> = [];
  let refused = 0;
  for (const stored of files) {
    let path: string;
    try {
      path = ctx.readable(stored.file);
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      refused++; // what it points to is not this checkpoint's file
      result.problem ??= error.message;
      continue;
    }
    const info = await stat(path).catch(() => undefined);
    if (info) found.push({ stored, path, size: info.size });
  }
  // A set's files are hashed side by side, one per core; one file with the page-prefetching hasher.
  const paths = found.map((f) => f.path);
  const digests = paths.length === 1 ? [await sha256File(paths[0] as string)] : await sha256Files(paths);
  const intact = found.filter((f, i) => digests[i] === f.stored.sha256 && f.size === f.stored.size).length;
  const own = found.findIndex((f) => f.stored.file === record.file);
  if (own >= 0) result.actual = digests[own];
  if (intact === files.length) result.status = 'ok';
  else if (found.length === 0 && refused === 0) result.status = 'missing';
  else result.status = 'corrupted';
  if (result.status !== record.status && !o.readOnly) {
    await ctx.change(record.id, (r) => {
      r.status = result.status;
    });
  }
  await ctx.emit('afterIntegrityCheck', {
    experiment: o.experiment,
    record: ctx.info(record),
    status: result.status,
    expected: record.sha256,
    ...(result.actual ? { actual: result.actual } : {}),
  });
  return result;
}
