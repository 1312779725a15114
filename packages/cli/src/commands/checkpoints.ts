/** Commands over one experiment's checkpoint folder, each a thin layer over CheckpointManager. */
import {
  type CheckpointManager,
  type CheckpointManagerOptions,
  type CheckpointRecord,
  ConflictError,
  InvalidArgumentError,
  keepBest as keepBestPolicy,
  keepLatest as keepLatestPolicy,
  type ListFilter,
  type Selector,
} from '@ckpt/core';
import type { Context } from '../context.js';
import { formatBytes, formatMetric } from '../output.js';

/** `12`, `epoch:12`, `step:3000`, `best`, `latest`, `best:val_acc:max`, or an id. */
export function parseSelector(text: string): Selector {
  const [kind, value, mode] = text.split(':');
  if (kind === 'epoch' || kind === 'step') {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${text}: ${kind} must be a whole number`);
    return kind === 'epoch' ? { epoch: n } : { step: n };
  }
  if (kind === 'best' && value) {
    if (mode !== undefined && mode !== 'min' && mode !== 'max') {
      throw new InvalidArgumentError(`${text}: the mode must be min or max`);
    }
    return { best: value, mode: (mode as 'min' | 'max' | undefined) ?? 'min' };
  }
  return text;
}

/** Commands that only read open the experiment read-only: they never write or delete in it, recovery included. */
const READ_ONLY: Partial<CheckpointManagerOptions> = { readOnly: true };

async function withManager<T>(
  ctx: Context,
  target: string | undefined,
  extra: Partial<CheckpointManagerOptions>,
  work: (m: CheckpointManager) => Promise<T>,
): Promise<T> {
  const manager = await ctx.manager(target, extra);
  try {
    return await work(manager);
  } finally {
    await manager.close();
  }
}

function flags(record: CheckpointRecord): string {
  return [record.isBest ? 'best' : '', record.isLatest ? 'latest' : '', record.protected ? 'protected' : '']
    .filter(Boolean)
    .join(',');
}

function recordRows(ctx: Context, records: CheckpointRecord[]): void {
  const metricNames = [...new Set(records.flatMap((r) => Object.keys(r.metrics)))].sort().slice(0, 4);
  const { c } = ctx.out;
  ctx.out.table(
    ['id', 'epoch', 'step', ...metricNames, 'size', 'status', 'flags', 'tags'],
    records.map((r) => [
      r.id,
      r.epoch ?? '-',
      r.step ?? '-',
      ...metricNames.map((m) => formatMetric(r.metrics[m])),
      formatBytes(r.size),
      r.status === 'ok' ? c.green(r.status) : c.red(r.status),
      r.isBest ? c.bold(flags(r)) : flags(r),
      r.tags.join(','),
    ]),
  );
}

export interface ListOptions {
  tag?: string;
  sort?: string;
  desc?: boolean;
  limit?: string;
  metric?: string;
}

/** `--metric val_loss<0.3` style bounds. */
function metricFilter(text: string): ListFilter['metric'] {
  const match = /^([\w./-]+)\s*(<=|>=|<|>)\s*(-?[\d.eE+-]+)$/.exec(text);
  if (!match) throw new InvalidArgumentError(`--metric ${text}: expected a bound such as val_loss<0.3`);
  const [, name, op, value] = match as unknown as [string, string, string, string];
  return op.startsWith('<') ? { name, max: Number(value) } : { name, min: Number(value) };
}

export async function listCommand(ctx: Context, target: string | undefined, options: ListOptions): Promise<void> {
  await withManager(ctx, target, READ_ONLY, async (manager) => {
    const filter: ListFilter = {
      ...(options.tag ? { tag: options.tag } : {}),
      ...(options.sort ? { sortBy: options.sort } : {}),
      ...(options.desc ? { order: 'desc' as const } : {}),
      ...(options.limit ? { limit: Number(options.limit) } : {}),
      ...(options.metric ? { metric: metricFilter(options.metric) } : {}),
    };
    const records = await manager.list(filter);
    ctx.out.result(records, () => {
      if (records.length === 0) ctx.out.line(`no checkpoints in ${manager.folder}`);
      else recordRows(ctx, records);
    });
  });
}

export async function showCommand(ctx: Context, selector: string, target: string | undefined): Promise<void> {
  await withManager(ctx, target, READ_ONLY, async (manager) => {
    const record = await manager.get(parseSelector(selector));
    if (!record) throw new InvalidArgumentError(`no checkpoint ${selector} in ${manager.folder}`);
    const inspection = await manager.inspect({ id: record.id });
    ctx.out.result({ ...record, inspection }, () => {
      const { c } = ctx.out;
      ctx.out.line(c.bold(record.id));
      const rows: Array<[string, string]> = [
        ['path', record.path],
        ['format', record.format],
        ['epoch / step', `${record.epoch ?? '-'} / ${record.step ?? '-'}`],
        ['saved', record.timestamp],
        ['size', formatBytes(record.size)],
        ['sha256', record.sha256],
        ['status', record.status],
        ['flags', flags(record) || '-'],
        ['tags', record.tags.join(', ') || '-'],
        ['tensors', `${inspection.tensors.length} (${inspection.parameterCount.toLocaleString('en-US')} parameters)`],
      ];
      if (record.description) rows.push(['description', record.description]);
      for (const [key, value] of rows) ctx.out.line(`  ${key.padEnd(13)} ${value}`);
      const metrics = Object.entries(record.metrics);
      if (metrics.length > 0) {
        ctx.out.line(c.bold('metrics'));
        for (const [name, value] of metrics) ctx.out.line(`  ${name.padEnd(13)} ${formatMetric(value)}`);
      }
      if (record.config) {
        ctx.out.line(c.bold('config'));
        ctx.out.line(`  ${JSON.stringify(record.config)}`);
      }
    });
  });
}

export async function compareCommand(
  ctx: Context,
  selectors: string[],
  target: string | undefined,
  options: { tensors?: boolean },
): Promise<void> {
  if (selectors.length < 2) throw new InvalidArgumentError('compare needs at least two checkpoints');
  await withManager(ctx, target, READ_ONLY, async (manager) => {
    const comparison = await manager.compare(selectors.map(parseSelector), { tensors: options.tensors ?? false });
    ctx.out.result(comparison, () => {
      const { ids } = comparison;
      ctx.out.table(
        ['', ...ids],
        [
          ['epoch', ...ids.map((id) => String(comparison.epochs[id] ?? '-'))],
          ['step', ...ids.map((id) => String(comparison.steps[id] ?? '-'))],
          ...Object.entries(comparison.metrics).map(([name, values]) => [
            name,
            ...ids.map((id) => formatMetric(values[id])),
          ]),
        ],
      );
      const config = Object.entries(comparison.config);
      if (config.length > 0) {
        ctx.out.line();
        ctx.out.line(ctx.out.c.bold('config differences'));
        ctx.out.table(
          ['key', ...ids],
          config.map(([key, values]) => [key, ...ids.map((id) => JSON.stringify(values[id]) ?? '-')]),
        );
      }
      for (const [id, tensors] of Object.entries(comparison.tensors ?? {})) {
        const changed = Object.entries(tensors).filter(([, d]) => d.status !== 'equal');
        ctx.out.line();
        ctx.out.line(
          `${ctx.out.c.bold(id)} vs ${ids[0]}: ${changed.length} of ${Object.keys(tensors).length} tensors differ`,
        );
        for (const [name, d] of changed) {
          ctx.out.line(
            `  ${name}  ${d.status}  ${d.maxAbsDiff === undefined ? (d.detail ?? '') : `max ${d.maxAbsDiff.toExponential(3)}`}`,
          );
        }
      }
    });
  });
}

export async function exportCommand(
  ctx: Context,
  selector: string,
  destination: string,
  target: string | undefined,
  options: { format?: string },
): Promise<void> {
  await withManager(ctx, target, READ_ONLY, async (manager) => {
    const result = await manager.export(
      parseSelector(selector),
      destination,
      options.format ? { format: options.format } : {},
    );
    ctx.out.result(result, () => {
      ctx.out.line(`exported ${selector} as ${result.format} to ${result.destination}`);
      for (const f of result.files) ctx.out.line(`  ${f.path}  ${formatBytes(f.size)}  sha256 ${f.sha256}`);
      ctx.out.line(`  manifest ${result.manifest}`);
    });
  });
}

export async function deleteCommand(
  ctx: Context,
  selectors: string[],
  target: string | undefined,
  options: { force?: boolean },
): Promise<void> {
  await withManager(ctx, target, {}, async (manager) => {
    const deleted: CheckpointRecord[] = [];
    for (const selector of selectors) {
      const record = await manager.get(parseSelector(selector));
      if (!record) throw new InvalidArgumentError(`no checkpoint ${selector} in ${manager.folder}`);
      // The library deletes what it is told; on the command line, losing the best or latest takes --force.
      if ((record.isBest || record.isLatest) && !options.force) {
        throw new ConflictError(
          `${record.id} is the ${record.isBest ? 'best' : 'latest'} checkpoint: pass --force to delete it anyway`,
          { path: record.path },
        );
      }
      deleted.push(await manager.delete({ id: record.id }, { force: options.force ?? false }));
    }
    ctx.out.result(deleted, () => {
      for (const r of deleted) ctx.out.line(`deleted ${r.id} (${r.file}, ${formatBytes(r.size)})`);
    });
  });
}

export async function pruneCommand(
  ctx: Context,
  target: string | undefined,
  options: { dryRun?: boolean; keepLatest?: string; keepBest?: string },
): Promise<void> {
  // Flags, else the config file's retention, else the latest 1 and the best 3.
  const configured = ctx.config.checkpoints.retention;
  const keepLatest = Number(options.keepLatest ?? configured.keepLast ?? 1);
  const keepBest = Number(options.keepBest ?? configured.keepBest ?? 3);
  for (const [flag, n] of [
    ['--keep-latest', keepLatest],
    ['--keep-best', keepBest],
  ] as const) {
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} must be a whole number >= 1`);
  }
  // This command's retention: a checkpoint either policy keeps is kept (best and latest never go).
  await withManager(
    ctx,
    target,
    {
      retention: [keepBestPolicy(keepBest), keepLatestPolicy(keepLatest)],
      ...(options.dryRun ? READ_ONLY : {}),
    },
    async (manager) => {
      const removed = options.dryRun ? await manager.retentionPlan() : await manager.applyRetention();
      ctx.out.result({ dryRun: options.dryRun ?? false, removed }, () => {
        const verb = options.dryRun ? 'would delete' : 'deleted';
        if (removed.length === 0) ctx.out.line('nothing to prune');
        for (const r of removed) ctx.out.line(`${verb} ${r.id} (${formatBytes(r.size)})`);
        const bytes = removed.reduce((sum, r) => sum + r.size, 0);
        if (removed.length > 0) ctx.out.line(`${verb} ${removed.length} checkpoints, ${formatBytes(bytes)}`);
      });
    },
  );
}

export async function protectCommand(
  ctx: Context,
  selector: string,
  target: string | undefined,
  options: { undo?: boolean },
): Promise<void> {
  await withManager(ctx, target, {}, async (manager) => {
    const record = options.undo
      ? await manager.unprotect(parseSelector(selector))
      : await manager.protect(parseSelector(selector));
    ctx.out.result(record, () =>
      ctx.out.line(`${record.id} is ${record.protected ? 'protected' : 'no longer protected'}`),
    );
  });
}

export async function summaryCommand(ctx: Context, target: string | undefined): Promise<void> {
  await withManager(ctx, target, READ_ONLY, async (manager) => {
    const summary = await manager.summary();
    ctx.out.result(summary, () => {
      const { c } = ctx.out;
      ctx.out.line(`${c.bold(summary.experiment)} (${summary.model}) in ${summary.folder}`);
      ctx.out.line(
        `  checkpoints  ${summary.count} (${formatBytes(summary.totalSize)}), ${summary.protected} protected`,
      );
      if (summary.best) {
        const metrics = Object.entries(summary.best.metrics)
          .map(([k, v]) => `${k}=${formatMetric(v)}`)
          .join(' ');
        ctx.out.line(`  best         ${summary.best.id}  ${metrics}`);
      }
      if (summary.latest) ctx.out.line(`  latest       ${summary.latest.id}  epoch ${summary.latest.epoch ?? '-'}`);
      const problems = summary.problems.map((p) => `${p.id} ${p.status}`).join(', ');
      ctx.out.line(`  problems     ${problems ? c.red(problems) : c.green('none')}`);
    });
  });
}

export async function resumePointCommand(ctx: Context, target: string | undefined): Promise<void> {
  await withManager(ctx, target, READ_ONLY, async (manager) => {
    const latest = await manager.latest();
    const resumable = latest && latest.status === 'ok' ? latest : undefined;
    const result = resumable
      ? { resumable: true, id: resumable.id, path: resumable.path, epoch: resumable.epoch, step: resumable.step }
      : { resumable: false };
    ctx.out.result(result, () => {
      if (!resumable) ctx.out.line('no checkpoint to resume from: training starts from scratch');
      else
        ctx.out.line(
          `resume from ${resumable.id} (epoch ${resumable.epoch ?? '-'}, step ${resumable.step ?? '-'}): ${resumable.path}`,
        );
    });
  });
}

export async function verifyExperiment(ctx: Context, target: string | undefined): Promise<boolean> {
  return withManager(ctx, target, READ_ONLY, async (manager) => {
    const results = await manager.verify('all');
    const ok = results.every((r) => r.status === 'ok');
    ctx.out.result({ experiment: manager.experiment, folder: manager.folder, ok, results }, () => {
      const { c } = ctx.out;
      for (const r of results) {
        ctx.out.line(`${r.status === 'ok' ? c.green('OK') : c.red(r.status.toUpperCase())}  ${r.id}  ${r.path}`);
      }
      ctx.out.line(ok ? c.green(`all ${results.length} checkpoints verified`) : c.red('verification FAILED'));
    });
    return ok;
  });
}
