/** Commands over the tracking database: experiments, metrics (with a terminal plot), statistics. */
import { type ExperimentQuery, InvalidArgumentError, type TrackingDatabase } from '@ckpt/core';
import asciichart from 'asciichart';
import type { Context } from '../context.js';
import { formatBytes, formatMetric } from '../output.js';

async function withStore<T>(ctx: Context, work: (store: TrackingDatabase) => Promise<T>): Promise<T> {
  const store = await ctx.tracking();
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

export interface ExperimentsOptions {
  project?: string;
  tag?: string;
  status?: string;
  metric?: string;
  sort?: string;
  desc?: boolean;
  limit?: string;
}

/** `val_loss<0.3`, `val_acc>=0.9`, `last:val_loss<0.5`, `max:val_acc>0.8`. */
function metricCondition(text: string): NonNullable<ExperimentQuery['metric']> {
  const match = /^(?:(min|max|last):)?([\w./-]+)\s*(<=|>=|<|>|=)\s*(-?[\d.eE+-]+)$/.exec(text);
  if (!match) throw new InvalidArgumentError(`--metric ${text}: expected a condition such as val_loss<0.3`);
  const [, of, name, op, raw] = match as unknown as [string, string | undefined, string, string, string];
  const value = Number(raw);
  const key = { '<': 'lt', '<=': 'lte', '>': 'gt', '>=': 'gte', '=': 'eq' }[op] as 'lt';
  return { name, ...(of ? { of: of as 'min' } : {}), [key]: value };
}

export async function experimentsCommand(ctx: Context, options: ExperimentsOptions): Promise<void> {
  await withStore(ctx, async (store) => {
    const query: ExperimentQuery = {
      ...(options.project ? { project: options.project } : {}),
      ...(options.tag ? { tag: options.tag } : {}),
      ...(options.status ? { status: options.status.split(',') as ExperimentQuery['status'] & string[] } : {}),
      ...(options.metric ? { metric: metricCondition(options.metric) } : {}),
      ...(options.sort ? { sortBy: options.sort } : {}),
      ...(options.desc ? { order: 'desc' as const } : {}),
      ...(options.limit ? { limit: Number(options.limit) } : {}),
    };
    const page = await store.experiments(query);
    ctx.out.result(page, () => {
      if (page.experiments.length === 0) {
        ctx.out.line('no experiments match');
        return;
      }
      const { c } = ctx.out;
      ctx.out.table(
        ['id', 'project', 'name', 'status', 'started', 'duration', 'tags'],
        page.experiments.map((e) => [
          e.id,
          e.project,
          e.name,
          e.status === 'completed' ? c.green(e.status) : e.status === 'failed' ? c.red(e.status) : c.yellow(e.status),
          e.startedAt.toISOString().replace('T', ' ').slice(0, 19),
          e.endedAt ? `${((e.endedAt.getTime() - e.startedAt.getTime()) / 1000).toFixed(1)} s` : '-',
          e.tags.join(','),
        ]),
      );
      if (page.total > page.experiments.length)
        ctx.out.line(c.dim(`${page.experiments.length} of ${page.total} shown`));
    });
  });
}

function experimentOf(store: TrackingDatabase, ref: string, project: string) {
  return /^\d+$/.test(ref) ? store.getExperiment(Number(ref)) : store.getExperiment(ref, project);
}

export async function metricsCommand(
  ctx: Context,
  experiment: string,
  options: { project?: string; metric?: string[]; plot?: boolean; width?: string; height?: string },
): Promise<void> {
  await withStore(ctx, async (store) => {
    const found = await experimentOf(store, experiment, options.project ?? ctx.config.tracker.project);
    const summaries = await store.metrics(found.id);
    const wanted = options.metric && options.metric.length > 0 ? options.metric : summaries.map((m) => m.name);
    const unknown = wanted.filter((name) => !summaries.some((m) => m.name === name));
    if (unknown.length > 0) {
      throw new InvalidArgumentError(`experiment ${found.name} has no metric ${unknown.join(', ')}`, {
        expected: summaries.map((m) => m.name).join(', ') || '(no metrics logged)',
      });
    }
    const width = Number(options.width ?? 60);
    const series = options.plot
      ? Object.fromEntries(
          await Promise.all(
            wanted.map(async (name) => [name, await store.metricBuckets(found.id, name, width)] as const),
          ),
        )
      : undefined;
    const chosen = summaries.filter((m) => wanted.includes(m.name));
    ctx.out.result({ experiment: found, metrics: chosen, ...(series ? { series } : {}) }, () => {
      ctx.out.line(`${ctx.out.c.bold(found.name)} (${found.project}, ${found.status})`);
      ctx.out.table(
        ['metric', 'points', 'min', 'max', 'last', 'last step'],
        chosen.map((m) => [
          m.name,
          m.count,
          formatMetric(m.min),
          formatMetric(m.max),
          formatMetric(m.last),
          m.lastStep ?? '-',
        ]),
      );
      for (const [name, buckets] of Object.entries(series ?? {})) {
        const values = buckets.map((b) => b.last).filter(Number.isFinite);
        if (values.length < 2) continue;
        ctx.out.line();
        ctx.out.line(`${ctx.out.c.bold(name)}  steps ${buckets[0]?.fromStep}..${buckets[buckets.length - 1]?.toStep}`);
        ctx.out.line(
          asciichart.plot(values, {
            height: Number(options.height ?? 10),
            format: (x: number) => formatMetric(x).padStart(10),
          }),
        );
      }
    });
  });
}

export async function statsCommand(ctx: Context, options: { project?: string }): Promise<void> {
  await withStore(ctx, async (store) => {
    const stats = await store.statistics(options.project ? { project: options.project } : {});
    ctx.out.result(stats, () => {
      const byStatus = Object.entries(stats.experiments.byStatus)
        .map(([status, n]) => `${n} ${status}`)
        .join(', ');
      ctx.out.line(`experiments  ${stats.experiments.total}${byStatus ? ` (${byStatus})` : ''}`);
      ctx.out.line(`checkpoints  ${stats.checkpoints.total} (${formatBytes(stats.checkpoints.bytes)})`);
      const d = stats.durations;
      if (d.count > 0) {
        const s = (ms: number | undefined) => `${((ms ?? 0) / 1000).toFixed(1)} s`;
        ctx.out.line(`durations    mean ${s(d.mean)}, min ${s(d.min)}, max ${s(d.max)} over ${d.count} finished`);
      }
      ctx.out.line(
        `metrics      ${stats.metrics.series} series, ${stats.metrics.points.toLocaleString('en-US')} points`,
      );
      if (stats.checkpoints.byExperiment.length > 0) {
        ctx.out.line();
        const points = new Map(stats.metrics.byExperiment.map((e) => [e.id, e.points]));
        ctx.out.table(
          ['id', 'experiment', 'checkpoints', 'bytes', 'metric points'],
          stats.checkpoints.byExperiment.map((e) => [
            e.id,
            e.name,
            e.count,
            formatBytes(e.bytes),
            points.get(e.id) ?? 0,
          ]),
        );
      }
    });
  });
}
