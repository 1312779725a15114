/**
 * `ckpt db copy <from> <to>`: every experiment (params, tags, metric series
 * and points, checkpoint records) from one tracking database to another,
 * SQLite → PostgreSQL the common case. Each experiment is written in one
 * transaction and then read back and compared by checksum, so a copy that
 * stops half-way is resumed by running it again: experiments already there
 * with the same checksum are skipped, a different one of the same name is
 * reported and left alone. `ckpt db info` says what a database holds.
 */
import { createHash } from 'node:crypto';
import {
  ConflictError,
  type ExperimentExport,
  IntegrityError,
  NotFoundError,
  openTrackingDatabase,
  parseDatabaseLocation,
  type TrackingDatabase,
  toJson,
} from '@ckpt/core';
import type { Context } from '../context.js';

/** A digest of everything an experiment holds, independent of the database's ids and row order. */
export function experimentChecksum(data: ExperimentExport): string {
  const sorted = (record: Record<string, unknown>) =>
    Object.fromEntries(
      Object.keys(record)
        .sort()
        .map((k) => [k, record[k]]),
    );
  const { id: _id, ...experiment } = data.experiment;
  const canonical = {
    experiment: { ...experiment, tags: [...experiment.tags].sort(), config: experiment.config },
    params: sorted(data.params),
    metrics: Object.keys(data.metrics)
      .sort()
      .map((name) => [name, data.metrics[name]]),
    checkpoints: [...data.checkpoints]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map(({ experiment: _e, ...c }) => ({ ...c, metrics: sorted(c.metrics) })),
  };
  return createHash('sha256').update(toJson(canonical)).digest('hex');
}

function counts(data: ExperimentExport) {
  return {
    series: Object.keys(data.metrics).length,
    points: Object.values(data.metrics).reduce((sum, points) => sum + points.length, 0),
    checkpoints: data.checkpoints.length,
  };
}

async function allExperiments(db: TrackingDatabase) {
  const found = [];
  for (let offset = 0; ; offset += 500) {
    const page = await db.experiments({ sortBy: 'started', order: 'asc', limit: 500, offset });
    found.push(...page.experiments);
    if (page.experiments.length < 500) return found;
  }
}

async function existing(db: TrackingDatabase, name: string, project: string) {
  try {
    return await db.getExperiment(name, project);
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

interface CopiedExperiment {
  project: string;
  name: string;
  outcome: 'copied' | 'already there' | 'conflict';
  series: number;
  points: number;
  checkpoints: number;
  sha256: string;
}

export async function copyCommand(ctx: Context, from: string, to: string): Promise<void> {
  const source = parseDatabaseLocation(from);
  const target = parseDatabaseLocation(to);
  if (source.kind === target.kind && source.target === target.target) {
    throw new ConflictError(`cannot copy ${source.display} onto itself`);
  }
  const input = await openTrackingDatabase(from, { readonly: true });
  try {
    const output = await openTrackingDatabase(to);
    try {
      const experiments = await allExperiments(input);
      const results: CopiedExperiment[] = [];
      for (const [k, experiment] of experiments.entries()) {
        const data = await input.exportExperiment(experiment.id);
        const sha256 = experimentChecksum(data);
        const there = await existing(output, experiment.name, experiment.project);
        let outcome: CopiedExperiment['outcome'];
        if (there) {
          const theirs = experimentChecksum(await output.exportExperiment(there.id));
          outcome = theirs === sha256 ? 'already there' : 'conflict';
        } else {
          const copied = await output.importExperiment(data);
          const written = experimentChecksum(await output.exportExperiment(copied.id));
          if (written !== sha256) {
            throw new IntegrityError(
              `experiment ${experiment.name} (${experiment.project}) read back from ${target.display} differs from ${source.display}`,
              { expected: sha256, found: written },
            );
          }
          outcome = 'copied';
        }
        const result = { project: experiment.project, name: experiment.name, outcome, sha256, ...counts(data) };
        results.push(result);
        if (!ctx.out.json) {
          const mark =
            outcome === 'copied'
              ? ctx.out.c.green('copied')
              : outcome === 'conflict'
                ? ctx.out.c.red('conflict')
                : ctx.out.c.dim('already there');
          ctx.out.line(
            `[${k + 1}/${experiments.length}] ${mark} ${experiment.project}/${experiment.name}: ${result.points.toLocaleString('en-US')} points in ${result.series} series, ${result.checkpoints} checkpoints`,
          );
        }
      }
      const total = (key: 'points' | 'series' | 'checkpoints') => results.reduce((sum, r) => sum + r[key], 0);
      const conflicts = results.filter((r) => r.outcome === 'conflict');
      const summary = {
        from: source.display,
        to: target.display,
        experiments: results.length,
        copied: results.filter((r) => r.outcome === 'copied').length,
        alreadyThere: results.filter((r) => r.outcome === 'already there').length,
        conflicts: conflicts.length,
        series: total('series'),
        points: total('points'),
        checkpoints: total('checkpoints'),
        results,
      };
      ctx.out.result(summary, () => {
        ctx.out.line(
          `${summary.copied} copied, ${summary.alreadyThere} already there, ${summary.conflicts} in conflict, of ${summary.experiments} experiments (${summary.points.toLocaleString('en-US')} points, ${summary.checkpoints} checkpoints), each verified by checksum: ${source.display} → ${target.display}`,
        );
      });
      if (conflicts.length > 0) {
        throw new ConflictError(
          `${conflicts.length} experiment(s) exist in ${target.display} with other contents: ${conflicts
            .slice(0, 5)
            .map((r) => `${r.project}/${r.name}`)
            .join(', ')}${conflicts.length > 5 ? ', ...' : ''}; rename or remove them there, then run the copy again`,
        );
      }
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

export async function infoCommand(ctx: Context): Promise<void> {
  const db = await ctx.tracking();
  try {
    const stats = await db.statistics();
    const info = {
      kind: db.kind,
      location: db.location,
      schemaVersion: db.upgradedFrom,
      experiments: stats.experiments.total,
      series: stats.metrics.series,
      points: stats.metrics.points,
      checkpoints: stats.checkpoints.total,
    };
    ctx.out.result(info, () => {
      ctx.out.line(`${info.kind} ${info.location} (schema version ${info.schemaVersion})`);
      ctx.out.line(
        `${info.experiments} experiments, ${info.series} metric series, ${info.points.toLocaleString('en-US')} points, ${info.checkpoints} checkpoints`,
      );
    });
  } finally {
    await db.close();
  }
}
