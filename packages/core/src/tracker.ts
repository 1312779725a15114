/**
 * The contract an experiment tracker implements (@ckpt/tracker-sqlite does).
 * The CheckpointManager calls it after each change it commits to disk; the
 * index file stays the source of truth, so a tracker that fails is reported
 * (a warning and an `error` event) and never undoes a save.
 */
import type { CheckpointRecord } from './record.js';

export interface ExperimentInfo {
  experiment: string;
  model: string;
  config?: Record<string, unknown>;
  tags?: string[];
  description?: string;
}

export interface Tracker {
  readonly name: string;
  /** Called when a manager opens an experiment (again, after a restart). */
  startExperiment?(info: ExperimentInfo): unknown;
  /** Called when the manager closes: 'completed', 'failed', ... */
  endExperiment?(experiment: string, status: string): unknown;
  /** A checkpoint was saved. */
  recordCheckpoint(record: CheckpointRecord): unknown;
  /** Flags, tags, description or status of a checkpoint changed. */
  updateCheckpoint?(record: CheckpointRecord): unknown;
  /** A checkpoint was deleted. */
  removeCheckpoint?(experiment: string, id: string): unknown;
  /** The metrics given with a save, at its step (or epoch). */
  recordMetrics?(
    experiment: string,
    metrics: Record<string, number>,
    at: { step: number | null; epoch: number | null },
  ): unknown;
}
