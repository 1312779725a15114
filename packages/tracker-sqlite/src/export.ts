/** An experiment as one JSON document or as CSV (metrics in long form). */
import type Database from 'better-sqlite3';
import { listCheckpoints, metricHistory } from './queries.js';
import type { Experiment } from './rows.js';
import { toJson } from './values.js';

export interface ExperimentExport {
  experiment: Experiment;
  params: Record<string, unknown>;
  /** name -> points in step order; NaN and infinities as the strings "NaN", "Infinity", "-Infinity". */
  metrics: Record<string, Array<{ step: number; value: number; timestamp: string }>>;
  checkpoints: ReturnType<typeof listCheckpoints>;
}

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

export function toJsonText(data: ExperimentExport): string {
  return `${JSON.stringify(JSON.parse(toJson(data)), null, 2)}\n`;
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** `experiment,metric,step,value,timestamp`, one row per point; NaN and infinities as pandas reads them. */
export function toCsvText(data: ExperimentExport): string {
  const lines = ['experiment,metric,step,value,timestamp'];
  for (const [name, points] of Object.entries(data.metrics)) {
    for (const p of points) {
      const value = Number.isNaN(p.value)
        ? 'NaN'
        : p.value === Infinity
          ? 'inf'
          : p.value === -Infinity
            ? '-inf'
            : String(p.value);
      lines.push([csvField(data.experiment.name), csvField(name), String(p.step), value, p.timestamp].join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}
