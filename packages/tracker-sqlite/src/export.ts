/** An experiment with everything logged under it, for `export` and `ckpt db copy`. */
import type { Experiment, ExperimentExport } from '@ckpt/core';
import type Database from 'better-sqlite3';
import { listCheckpoints, metricHistory } from './queries.js';

export type { ExperimentExport } from '@ckpt/core';

export function collectExport(
  db: Database.Database,
  experiment: Experiment,
  params: Record<string, unknown>,
): ExperimentExport {
  const names = (
    db.prepare('SELECT name FROM metric_series WHERE experiment_id = ? ORDER BY name').all(experiment.id) as Array<{
      name: string;
    }>
  ).map((r) => r.name);
  const metrics: ExperimentExport['metrics'] = {};
  for (const name of names) {
    metrics[name] = metricHistory(db, experiment.id, name).map((p) => ({
      step: p.step,
      value: p.value,
      timestamp: p.timestamp.toISOString(),
    }));
  }
  return { experiment, params, metrics, checkpoints: listCheckpoints(db, experiment.id, { includeDeleted: true }) };
}
