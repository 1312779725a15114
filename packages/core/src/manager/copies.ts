/**
 * Copies of checkpoints: backups (and restoring from them), exports (a
 * verified copy or a conversion, with a manifest) and comparisons.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { renameDurably, writeFileAtomic } from '@ckpt/native';
import { convertCheckpoint } from '../convert.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { type Comparison, compareConfigs, compareMetrics, compareTensors } from './compare.js';
import type { ManagerContext } from './context.js';
import { copyVerified, gunzipFile, makeStagingDir } from './files.js';
import { readCheckpoint } from './loading.js';
import type { Selector } from './ranking.js';
import type { CheckpointRecord, StoredFile } from './record.js';
import { recordFiles } from './sets.js';

export interface ExportResult {
  destination: string;
  format: string;
  files: Array<{ path: string; size: number; sha256: string }>;
  manifest: string;
}

/** Copies a checkpoint into the backup folder, checking the copy's digest. */
export async function backup(ctx: ManagerContext, selector: Selector): Promise<CheckpointRecord> {
  const { o } = ctx;
  const record = await ctx.record(selector);
  const file = `${o.layout.backupFolder}/${record.file}`;
  const destination = ctx.writable(file);
  await ctx.gate(
    'beforeBackup',
    { experiment: o.experiment, record: ctx.info(record), destination },
    `backing up ${record.id}`,
  );
  let { sha256 } = record; // a set's copies are each checked against their digests; its backup's is the index's
  if (record.files) await copySetInto(ctx, record.files, (f) => ctx.readable(f), ctx.writable(dirname(file)));
  else ({ sha256 } = await copyVerified(ctx.readable(record.file), destination, record.sha256, o.fsync));
  const updated = await ctx.change(record.id, (r) => {
    r.backup = { file, sha256, at: o.now().toISOString() };
  });
  await ctx.emit('afterBackup', { experiment: o.experiment, record: ctx.info(updated), destination, sha256 });
  return updated;
}

/** Replaces a missing or corrupted checkpoint with its verified backup. */
export async function restore(ctx: ManagerContext, selector: Selector): Promise<CheckpointRecord> {
  const record = await ctx.record(selector);
  if (!record.backup) throw new NotFoundError(`checkpoint ${record.id} has no backup`, { path: record.path });
  if (record.files) {
    const mirror = record.backup.file.slice(0, record.backup.file.length - record.file.length); // `<backups>/`
    const set = dirname(record.file);
    await copySetInto(ctx, record.files, (f) => ctx.readable(`${mirror}${f}`), ctx.writable(set));
  } else {
    await copyVerified(ctx.readable(record.backup.file), ctx.writable(record.file), record.sha256, ctx.o.fsync);
  }
  return ctx.change(record.id, (r) => {
    r.status = 'ok';
  });
}

/**
 * Exports a checkpoint to `destination` (a folder): a verified copy, or,
 * with `format`, a conversion by a registered backend. Writes
 * `<id>.manifest.json` beside it with the record and the new digests.
 */
export async function exportCheckpoint(
  ctx: ManagerContext,
  selector: Selector,
  destination: string,
  options: { format?: string },
): Promise<ExportResult> {
  const { o } = ctx;
  const record = await ctx.record(selector);
  const format = options.format ?? record.format;
  await ctx.gate(
    'beforeExport',
    { experiment: o.experiment, record: ctx.info(record), destination, format },
    `exporting ${record.id}`,
  );
  await mkdir(destination, { recursive: true });
  let files: ExportResult['files'];
  if (format === record.format) {
    files = [];
    for (const stored of recordFiles(record)) {
      const target = join(destination, stored.file);
      files.push({ path: target, ...(await copyVerified(ctx.readable(stored.file), target, stored.sha256, o.fsync)) });
    }
  } else {
    files = await convert(ctx, record, destination, format);
  }
  const manifest = join(destination, `${record.id}.manifest.json`);
  const { path: _path, backup: _backup, ...described } = record;
  const body = {
    exportedAt: o.now().toISOString(),
    format,
    files: files.map((f) => ({ file: relative(destination, f.path), size: f.size, sha256: f.sha256 })),
    source: described,
  };
  await writeFileAtomic(manifest, [Buffer.from(`${JSON.stringify(body, null, 2)}\n`)], { fsync: o.fsync });
  await ctx.emit('afterExport', { experiment: o.experiment, record: ctx.info(record), destination, format, files });
  return { destination, format, files, manifest };
}

/**
 * Copies a sharded checkpoint's files (each checked against its digest) into
 * the folder `target` through staging: the copies land in a folder that
 * replaces `target` in one rename, so `target` never holds half a set.
 */
async function copySetInto(
  ctx: ManagerContext,
  files: StoredFile[],
  sourceOf: (file: string) => string,
  target: string,
): Promise<void> {
  const staging = await makeStagingDir(ctx.folder);
  try {
    const staged = join(staging, 'set');
    for (const stored of files) {
      await copyVerified(sourceOf(stored.file), join(staged, basename(stored.file)), stored.sha256, ctx.o.fsync);
    }
    await mkdir(dirname(target), { recursive: true });
    await rename(target, join(staging, 'replaced')).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await renameDurably(staged, target, { fsync: ctx.o.fsync });
  } finally {
    await rm(staging, { recursive: true, force: true }); // this save's own staging folder
  }
}

async function convert(
  ctx: ManagerContext,
  record: CheckpointRecord,
  destination: string,
  format: string,
): Promise<ExportResult['files']> {
  const registry = ctx.o.registry;
  if (!registry?.has(format)) {
    throw new NotFoundError(`no storage backend named ${JSON.stringify(format)} to export to`, {
      expected: "the backend registered in the manager's `registry`",
    });
  }
  const to = registry.get(format);
  const ext = to.extensions.find((e) => !e.endsWith('.index.json')) ?? '';
  const target = join(destination, record.id + ext);
  const stored = ctx.readable(record.file);
  let source = stored;
  const staging = record.compression ? await makeStagingDir(ctx.folder) : undefined;
  try {
    if (staging) {
      source = join(staging, basename(record.file, '.gz'));
      await gunzipFile(stored, source);
    }
    const converted = await convertCheckpoint(source, target, { registry, from: record.format, to: format });
    return converted.files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 }));
  } finally {
    if (staging) await rm(staging, { recursive: true, force: true });
  }
}

/** Metrics side by side, configuration differences and, with `tensors`, per-tensor differences from the first. */
export async function compareCheckpoints(
  ctx: ManagerContext,
  selectors: Selector[],
  options: { tensors?: boolean },
): Promise<Comparison> {
  if (!Array.isArray(selectors) || selectors.length < 2) {
    throw new InvalidArgumentError('compare: give at least two checkpoints');
  }
  const records = await Promise.all(selectors.map((s) => ctx.record(s)));
  const comparison: Comparison = {
    ids: records.map((r) => r.id),
    ...compareMetrics(records),
    config: compareConfigs(records),
  };
  if (options.tensors) {
    const [first, ...rest] = records as [CheckpointRecord, ...CheckpointRecord[]];
    const base = (await readCheckpoint(ctx, first, false)).state;
    comparison.tensors = {};
    for (const record of rest) {
      comparison.tensors[record.id] = compareTensors(base, (await readCheckpoint(ctx, record, false)).state);
    }
  }
  return comparison;
}
