/** Experiments as rows and as objects. */
import type { Experiment, ExperimentStatus } from '@ckpt/core';
import { toDate } from './values.js';

export { type Experiment, type ExperimentStatus, STATUSES } from '@ckpt/core';

export interface ExperimentRow {
  id: number;
  project: string;
  name: string;
  status: string;
  description: string | null;
  config: string;
  tags: string | null;
  host: string | null;
  git_commit: string | null;
  started_at: number;
  ended_at: number | null;
}

export const EXPERIMENT_COLUMNS = `e.id, e.project, e.name, e.status, e.description, e.config, e.host, e.git_commit,
  e.started_at, e.ended_at, (SELECT json_group_array(tag) FROM experiment_tags t WHERE t.experiment_id = e.id) AS tags`;

export function experimentFromRow(row: ExperimentRow): Experiment {
  return {
    id: row.id,
    project: row.project,
    name: row.name,
    status: row.status as ExperimentStatus,
    description: row.description ?? undefined,
    config: JSON.parse(row.config) as Record<string, unknown>,
    tags: row.tags ? (JSON.parse(row.tags) as string[]).sort() : [],
    host: row.host ?? undefined,
    gitCommit: row.git_commit ?? undefined,
    startedAt: new Date(row.started_at),
    endedAt: toDate(row.ended_at),
  };
}
