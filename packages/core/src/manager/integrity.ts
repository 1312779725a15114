/**
 * Integrity: a checkpoint is ok when its file has the recorded size and
 * SHA-256; what a check finds is recorded (missing, corrupted, ok again).
 */
import { stat } from 'node:fs/promises';
import { sha256File } from '@ckpt/native';
import { FormatError } from '../errors.js';
import type { ManagerContext } from './context.js';
import type { Selector } from './ranking.js';
import type { CheckpointRecord, CheckpointStatus } from './record.js';

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
  let path: string | undefined;
  try {
    path = ctx.readable(record.file);
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    result.status = 'corrupted'; // refused: what it points to is not this checkpoint's file
    result.problem = error.message;
  }
  const info = path === undefined ? undefined : await stat(path).catch(() => undefined);
  if (path !== undefined && !info) {
    result.status = 'missing';
  } else if (path !== undefined && info) {
    result.actual = await sha256File(path);
    if (result.actual !== record.sha256 || info.size !== record.size) result.status = 'corrupted';
  }
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
