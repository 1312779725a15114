/**
 * Checkpoints written by many processes (`save({ rank, worldSize })`), with
 * no coordinator: the experiment's index, changed under its lock, is where
 * the ranks meet.
 *
 *  1. A rank joins the step's gathering (a save intent with `gather`), or
 *     starts it: the first one names the checkpoint, so all write one set.
 *  2. It writes its part (`model-0000{rank+1}-of-0000{N}.<ext>`, hashed as it
 *     is written) into the step's staging folder, then records the part.
 *  3. The rank that records the last part checks every part against its
 *     digest, writes the index, renames the set into place and commits the
 *     record. The others wait for that record and return it.
 * A rank whose process dies before its part is recorded, or a step that
 * outlives `gatherTimeoutMs`, is abandoned: its staging folder is removed and
 * no checkpoint appears. Nothing under a final name is ever part of a set.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { renameDurably, sha256Files, writeFileAtomic } from '@ckpt/native';
import { ConflictError, IntegrityError, InvalidArgumentError } from '../errors.js';
import { formatShardIndex, shardFileName } from '../shards.js';
import { isFlatTensorRecord } from '../tree.js';
import type { ManagerContext } from './context.js';
import { GATHERING, OWNER, ownerAlive, STAGING_FOLDER } from './files.js';
import { refreshFlags } from './ranking.js';
import type { Gather, GatheredPart, IndexFile, PendingSave, StoredRecord } from './record.js';
import type { Prepared } from './save-input.js';

/** How often a waiting rank looks at the index. */
const POLL_MS = 50;

export interface RankSave {
  ctx: ManagerContext;
  prepared: Prepared & { gather: { rank: number; worldSize: number } };
  metadata: Record<string, string>;
  /** The index name of the set (`model.safetensors.index.json`). */
  setIndex: string;
  /** The record of a new gathering, named and numbered under the lock. */
  newRecord: (index: IndexFile) => StoredRecord;
}

/** Writes this rank's part; returns the committed record, and whether this rank committed it. */
export async function saveRank(s: RankSave): Promise<{ stored: StoredRecord; committed: boolean }> {
  const { ctx, prepared } = s;
  const { rank, worldSize } = prepared.gather;
  if (!isFlatTensorRecord(prepared.state)) {
    throw new InvalidArgumentError("a multi-process save takes each rank's tensors by name, as a flat record", {
      expected: "{ 'layers.0.weight': tensor, … }",
    });
  }
  const joined = await joinStep(s);
  const set = dirname(joined.file);
  const { base, extension } = partNaming(s.setIndex);
  const name = shardFileName(base, rank, worldSize, extension);
  let saved: { size: number; sha256: string };
  try {
    const staged = join(stagingOf(ctx, joined.id), set);
    await mkdir(staged, { recursive: true });
    const { maxShardSize: _one, ...options } = ctx.o.saveOptions; // a part is one file
    saved = await ctx.o.backend.save(join(staged, name), prepared.state, {
      ...options,
      metadata: s.metadata,
      fsync: ctx.o.fsync,
    });
  } catch (error) {
    // The others stop waiting for a part that will not come; if another rank gave the step up first (removing
    // the staging folder this part was written into), that is what failed this write.
    const removed = await abandon(ctx, joined.id).catch(() => true);
    if (!removed) throw abandoned(joined, 'by another rank while this rank wrote its part', error);
    throw error;
  }
  const part: GatheredPart = {
    rank,
    file: `${set}/${name}`,
    size: saved.size,
    sha256: saved.sha256,
    tensors: Object.keys(prepared.state),
  };
  const { result: complete } = await ctx.update(async (index) => {
    const i = index.pending.findIndex((p) => p.record.id === joined.id && p.gather);
    const save = index.pending[i];
    if (!save?.gather) {
      // Given up while this part was written: the staging folder this rank may have made again goes too.
      await rm(stagingOf(ctx, joined.id), { recursive: true, force: true });
      throw abandoned(joined, 'before this rank recorded its part');
    }
    const parts = [...save.gather.parts.filter((p) => p.rank !== rank), part].sort((a, b) => a.rank - b.rank);
    index.pending[i] = { ...save, gather: { ...save.gather, parts } };
    return parts.length === worldSize;
  });
  if (complete) return { stored: await commit(ctx, joined.id, s.setIndex), committed: true };
  return { stored: await waitForCommit(ctx, joined), committed: false };
}

/** Joins the step's gathering, or starts it. */
async function joinStep(s: RankSave): Promise<StoredRecord> {
  const { ctx, prepared } = s;
  const { rank, worldSize } = prepared.gather;
  const sameStep = (p: PendingSave) =>
    p.gather?.worldSize === worldSize && p.record.epoch === prepared.epoch && p.record.step === prepared.step;
  const { result } = await ctx.update((index) => {
    ctx.tidy(index);
    let i = index.pending.findIndex(sameStep);
    if (i < 0) {
      const gather: Gather = { worldSize, started: ctx.o.now().toISOString(), ranks: [], parts: [] };
      index.pending.push({ owner: OWNER, record: s.newRecord(index), gather });
      i = index.pending.length - 1;
    }
    const save = index.pending[i] as PendingSave & { gather: Gather };
    const ranks = [...save.gather.ranks.filter((r) => r.rank !== rank), { rank, owner: OWNER }];
    const parts = save.gather.parts.filter((p) => p.rank !== rank); // a rank saving again replaces its part
    index.pending[i] = { ...save, gather: { ...save.gather, ranks, parts } };
    return save.record;
  });
  return result;
}

/** Verifies every part, writes the index, renames the set into place and commits its record. */
async function commit(ctx: ManagerContext, id: string, setIndex: string): Promise<StoredRecord> {
  const save = (await ctx.index()).pending.find((p) => p.record.id === id);
  if (!save?.gather) throw abandoned(save?.record ?? { id }, 'before it could be committed');
  const { record, gather } = save;
  const set = dirname(record.file);
  const staged = join(stagingOf(ctx, id), set);
  let index: { size: number; sha256: string };
  try {
    const paths = gather.parts.map((p) => join(staged, basename(p.file)));
    const [digests, sizes] = await Promise.all([
      sha256Files(paths),
      Promise.all(paths.map(async (p) => (await stat(p)).size)),
    ]);
    gather.parts.forEach((part, i) => {
      if (digests[i] !== part.sha256 || sizes[i] !== part.size) {
        throw new IntegrityError(`rank ${part.rank}'s part of ${id} changed after it was written`, {
          path: paths[i],
          expected: part.sha256,
          found: digests[i],
        });
      }
    });
    // `total_size` is tensor bytes, as transformers writes it: read from each part's header.
    const inspected = await Promise.all(paths.map((p) => ctx.o.backend.inspect(p)));
    const tensorBytes = inspected.reduce((sum, part) => sum + part.tensorBytes, 0);
    const text = formatShardIndex({ total_size: tensorBytes }, weightMap(gather, id));
    index = await writeFileAtomic(join(staged, setIndex), [Buffer.from(text, 'utf8')], { fsync: ctx.o.fsync });
    await renameDurably(staged, join(ctx.folder, set), { fsync: ctx.o.fsync });
  } catch (error) {
    await abandon(ctx, id);
    throw error;
  }
  const { result } = await ctx.update((ix) => {
    const existing = ix.checkpoints.find((r) => r.id === id);
    if (existing) return existing; // an opening rolled it forward meanwhile
    ix.pending = ix.pending.filter((p) => p.record.id !== id);
    const files = [
      ...gather.parts.map(({ file, size, sha256 }) => ({ file, size, sha256 })),
      { file: record.file, size: index.size, sha256: index.sha256 },
    ];
    const size = files.reduce((sum, f) => sum + f.size, 0);
    ix.checkpoints.push({ ...record, size, sha256: index.sha256, files, status: 'ok' });
    refreshFlags(ix.checkpoints, ctx.o.score);
    return ix.checkpoints.find((r) => r.id === id) as StoredRecord;
  });
  await rm(stagingOf(ctx, id), { recursive: true, force: true });
  return result;
}

/** Which part holds each tensor; two ranks writing one name is refused. */
function weightMap(gather: Gather, id: string): Map<string, string> {
  const map = new Map<string, string>();
  const owner = new Map<string, number>();
  for (const part of gather.parts) {
    for (const tensor of part.tensors) {
      const other = owner.get(tensor);
      if (other !== undefined) {
        throw new InvalidArgumentError(
          `ranks ${other} and ${part.rank} both saved tensor ${JSON.stringify(tensor)} in ${id}: each rank saves its own tensors`,
        );
      }
      owner.set(tensor, part.rank);
      map.set(tensor, basename(part.file));
    }
  }
  return map;
}

/** Waits until the rank that recorded the last part commits the checkpoint. */
async function waitForCommit(ctx: ManagerContext, joined: StoredRecord): Promise<StoredRecord> {
  for (;;) {
    const index = await ctx.index();
    const record = index.checkpoints.find((r) => r.id === joined.id);
    if (record) return record;
    const save = index.pending.find((p) => p.record.id === joined.id);
    if (!save?.gather) {
      // Gone from a read without the lock: confirmed under it before giving up.
      const { result } = await ctx.update((ix) => ix.checkpoints.find((r) => r.id === joined.id), { write: false });
      if (result) return result;
      throw abandoned(joined, 'by another rank or by an opening');
    }
    const now = ctx.o.now();
    const reason = whyAbandoned(save.gather, now, ctx.o.gatherTimeoutMs);
    if (reason) {
      await abandon(ctx, joined.id);
      throw abandoned(joined, reason);
    }
    if (now.getTime() - Date.parse(save.gather.started) > ctx.o.gatherTimeoutMs) {
      // Every part is written but the rank that wrote the last one has not committed: left to the next opening.
      throw new ConflictError(
        `every part of ${joined.id} is written, but it was not committed within ${ctx.o.gatherTimeoutMs} ms; the next opening commits or drops it`,
      );
    }
    await sleep(POLL_MS);
  }
}

/**
 * Why a gathering can never finish, or undefined while it still can: a rank
 * that joined is gone without having recorded its part, or the step outlived
 * its time. A gathering with every part recorded is its committer's to finish.
 */
export function whyAbandoned(gather: Gather, now: Date, timeoutMs: number): string | undefined {
  if (gather.parts.length === gather.worldSize) return undefined;
  const written = new Set(gather.parts.map((p) => p.rank));
  const dead = gather.ranks.find((r) => !written.has(r.rank) && !ownerAlive(r.owner));
  if (dead) return `rank ${dead.rank} (${dead.owner}) ended before writing its part`;
  const age = now.getTime() - Date.parse(gather.started);
  if (!(age <= timeoutMs)) {
    const missing = Array.from({ length: gather.worldSize }, (_, r) => r).filter((r) => !written.has(r));
    return `ranks ${missing.join(', ')} did not write their parts within ${timeoutMs} ms`;
  }
  return undefined;
}

/** Drops a gathering that cannot finish, and its staging folder; false when it was already gone. */
export async function abandon(ctx: ManagerContext, id: string): Promise<boolean> {
  const { result: found } = await ctx.update((index) => {
    const before = index.pending.length;
    index.pending = index.pending.filter((p) => p.record.id !== id || !p.gather);
    return index.pending.length < before;
  });
  await rm(stagingOf(ctx, id), { recursive: true, force: true });
  return found;
}

function abandoned(record: { id: string }, why: string, cause?: unknown): ConflictError {
  return new ConflictError(`the multi-process save of ${record.id} was abandoned ${why}; no checkpoint was committed`, {
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The staging folder of a gathering. */
export function stagingOf(ctx: { folder: string }, id: string): string {
  return join(ctx.folder, STAGING_FOLDER, `${GATHERING}${id}`); // named after the checkpoint: the index decides its fate
}

/** `model.safetensors.index.json` → parts named `model-…-of-….safetensors`. */
function partNaming(setIndex: string): { base: string; extension: string } {
  const name = setIndex.slice(0, -'.index.json'.length);
  const dot = name.indexOf('.');
  return { base: name.slice(0, dot), extension: name.slice(dot) };
}
