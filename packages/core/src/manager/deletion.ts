/**
 * Retention and deletion. Retention never deletes the best, the latest or a
 * protected checkpoint, and re-checks that under the lock (another process
 * may have saved since the plan was made). Hooks may veto each deletion.
 */
import { ConflictError, FormatError, VetoedError } from '../errors.js';
import type { ManagerContext } from './context.js';
import { removeEntry } from './files.js';
import { keepIfAny } from './policies.js';
import { findBest, findLatest, refreshFlags, type Selector } from './ranking.js';
import type { CheckpointRecord, IndexFile, StoredRecord } from './record.js';
import { removalTargets } from './sets.js';

/** The checkpoints retention would delete now (a dry run). */
export async function retentionPlan(ctx: ManagerContext): Promise<CheckpointRecord[]> {
  return doomed(ctx, await ctx.index()).map((r) => ctx.withPath(r));
}

/** Deletes what retention does not keep; returns what went. */
export async function applyRetention(ctx: ManagerContext): Promise<CheckpointRecord[]> {
  return remove(ctx, await retentionPlan(ctx), 'retention');
}

/** Deletes a checkpoint (and its backup). Protected ones need `force`. */
export async function deleteCheckpoint(
  ctx: ManagerContext,
  selector: Selector,
  options: { force?: boolean },
): Promise<CheckpointRecord> {
  const record = await ctx.record(selector);
  if (record.protected && !options.force) {
    throw new ConflictError(`checkpoint ${record.id} is protected: unprotect it or pass force`, {
      path: record.path,
    });
  }
  const [removed] = await remove(ctx, [record], 'user');
  if (!removed) throw new VetoedError('beforeDelete', 'a hook vetoed the deletion', `deleting ${record.id}`);
  return removed;
}

function doomed(ctx: ManagerContext, index: IndexFile): StoredRecord[] {
  const { retention, score } = ctx.o;
  if (retention.length === 0) return [];
  const best = findBest(index.checkpoints, score);
  const latest = findLatest(index.checkpoints);
  const candidates = index.checkpoints.filter((r) => r.status === 'ok');
  const ordered = [...candidates].sort((a, b) => a.sequence - b.sequence).map((r) => ctx.withPath(r));
  const kept = keepIfAny(...retention)(ordered, { score }); // a list keeps what any of its policies keeps
  return candidates.filter((r) => !kept.has(r.id) && r !== best && r !== latest && !r.protected);
}

async function remove(ctx: ManagerContext, records: CheckpointRecord[], reason: string): Promise<CheckpointRecord[]> {
  const { o } = ctx;
  const approved: CheckpointRecord[] = [];
  for (const record of records) {
    const emitted = await ctx.emit('beforeDelete', { experiment: o.experiment, record: ctx.info(record), reason });
    if (emitted?.vetoed) {
      o.warn(`not deleting ${record.id}: vetoed by hook ${emitted.vetoed.hook}: ${emitted.vetoed.reason}`);
      continue;
    }
    approved.push(record);
  }
  if (approved.length === 0) return [];
  const { result: removed } = await ctx.update((index) => {
    ctx.tidy(index);
    refreshFlags(index.checkpoints, o.score);
    const ids = new Set(approved.map((r) => r.id));
    const going = index.checkpoints.filter(
      (r) => ids.has(r.id) && (reason !== 'retention' || (!r.isBest && !r.isLatest && !r.protected)),
    );
    index.checkpoints = index.checkpoints.filter((r) => !going.includes(r));
    for (const r of going) index.deleting.push(...removalTargets(r));
    refreshFlags(index.checkpoints, o.score);
    return going;
  });
  const out: CheckpointRecord[] = [];
  for (const stored of removed) {
    const record = ctx.withPath(stored);
    for (const file of removalTargets(stored)) {
      try {
        await removeEntry(ctx.writable(file));
      } catch (error) {
        if (!(error instanceof FormatError)) throw error;
        o.warn(`${o.experiment}: ${error.message}`); // the record is gone; nothing outside is touched
      }
    }
    out.push(record);
    await ctx.notifyTracker('removeCheckpoint', (t) => t.removeCheckpoint?.(o.experiment, record.id));
    await ctx.emit('afterDelete', { experiment: o.experiment, record: ctx.info(record), reason });
  }
  if (removed.some((r) => r.isBest)) await ctx.syncBestFile();
  return out;
}
