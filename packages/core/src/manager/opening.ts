/**
 * Opening an experiment: reconcile the folder with the index (recovery), or,
 * read-only, report what recovery would do while changing nothing on disk.
 */
import { type FolderListing, scanFolder } from '@ckpt/native';
import type { ManagerContext } from './context.js';
import { refreshFlags } from './ranking.js';
import { type RecoveryReport, reconcile } from './recovery.js';

/** Reconciles the folder with the index and starts the experiment for the tracker and hooks. */
export async function openExperiment(ctx: ManagerContext): Promise<RecoveryReport> {
  const { o } = ctx;
  if (o.readOnly) return openReadOnly(ctx);
  // The folder is listed under the lock, on a worker thread, while the index is read.
  let listing: Promise<FolderListing> | undefined;
  const whileReading = () => (listing = scanFolder(ctx.folder));
  const { result } = await ctx.update(
    async (index) => {
      const records = index.checkpoints.slice();
      const statuses = records.map((r) => r.status);
      const report = await reconcile(index, recoveryContext(ctx), await (listing ?? whileReading()));
      // Reconciling marks statuses in place: the records it changed are replaced by copies, so
      // the journal gets exactly those (not every record at every opening).
      records.forEach((record, i) => {
        if (record.status !== statuses[i] && index.checkpoints[i] === record) index.checkpoints[i] = { ...record };
      });
      const previous = index.best;
      if (previous && (previous.monitor !== o.best.monitor || previous.mode !== o.best.mode)) {
        o.warn(
          `${o.experiment}: best was decided by ${previous.monitor ?? 'a function'} (${previous.mode}); now by ${o.best.monitor ?? 'a function'} (${o.best.mode}): flags recomputed`,
        );
      }
      index.best = o.best;
      refreshFlags(index.checkpoints, o.score);
      return report;
    },
    { whileReading },
  );
  warnAboutRecovery(ctx, result);
  await ctx.syncBestFile();
  await ctx.notifyTracker('startExperiment', (t) => t.startExperiment?.({ experiment: o.experiment, model: o.model }));
  await ctx.emit('experimentStart', { experiment: o.experiment });
  return result;
}

async function openReadOnly(ctx: ManagerContext): Promise<RecoveryReport> {
  // Nothing is written back: statuses are marked on the store's copy, which lasts while the files are unchanged.
  const [index, listing] = await Promise.all([ctx.index(), scanFolder(ctx.folder)]);
  const report = await reconcile(index, recoveryContext(ctx), listing);
  refreshFlags(index.checkpoints, ctx.o.score);
  warnAboutRecovery(ctx, report);
  return report;
}

function recoveryContext(ctx: ManagerContext) {
  const { o } = ctx;
  return {
    folder: ctx.folder,
    backend: o.backend,
    extensions: [ctx.extension],
    reserved: ctx.reservedNames(),
    adoptOrphans: o.adoptOrphans,
    readOnly: o.readOnly,
    fsync: o.fsync,
    experiment: o.experiment,
    model: o.model,
    gatherTimeoutMs: o.gatherTimeoutMs,
    now: o.now,
  };
}

function warnAboutRecovery(ctx: ManagerContext, result: RecoveryReport): void {
  const { o } = ctx;
  const notable = result.rolledForward.length + result.dropped.length + result.missing.length + result.corrupted.length;
  if (notable > 0) {
    o.warn(
      `${o.experiment}: ${o.readOnly ? 'found' : 'recovered the index'}: ${JSON.stringify({
        rolledForward: firstFew(result.rolledForward),
        dropped: firstFew(result.dropped),
        missing: firstFew(result.missing),
        corrupted: firstFew(result.corrupted),
      })}`,
    );
  }
  if (o.readOnly && result.removed.length > 0) {
    o.warn(
      `${o.experiment}: opened read-only; a writer would remove ${result.removed.length} leftover(s): ${result.removed.slice(0, 3).join(', ')}`,
    );
  }
  if (result.rejected.length > 0) {
    o.warn(
      `${o.experiment}: ${result.rejected.length} index entr${result.rejected.length === 1 ? 'y was' : 'ies were'} refused and set aside (the rest of the experiment is usable): ${result.rejected.slice(0, 3).join('; ')}`,
    );
  }
  if (result.orphans.length > 0) {
    o.warn(
      `${o.experiment}: ${result.orphans.length} checkpoint file(s) without a record (${result.orphans.slice(0, 3).join(', ')}); open with adoptOrphans to adopt them`,
    );
  }
}

/** A list for a message: the first ten, and how many more (an index may name 200,000). */
function firstFew(list: string[]): string[] {
  return list.length <= 10 ? list : [...list.slice(0, 10), `... and ${list.length - 10} more`];
}
