/**
 * Seed 001's JSON files beside a run's checkpoints: config.json,
 * training_summary.json, classification_report.json and minimal_logging.json,
 * with the seed's field names and order, times as Python's naive UTC
 * `isoformat()`.
 */

import type { CheckpointManager } from '../manager.js';
import { pythonIsoformat } from './index.js';

export interface Seed001RunInfo {
  modelName: string;
  lossFunction: string;
  /** The run's subfolder under `checkpoints/`, such as `flares/binary_classification`. */
  rootName: string;
  /** When training started (the run folder's timestamp). */
  startedAt: Date;
  /** The clock for end times (default `() => new Date()`). */
  now?: () => Date;
}

export interface TrainingMetadata {
  best_epoch?: number;
  num_epochs_trained?: number;
  early_stopping_triggered?: boolean;
  test_results?: Record<string, number>;
  [key: string]: unknown;
}

export interface MinimalLogging {
  bestEpoch: number;
  bestMetricValue: number;
  bestMetricName: string;
  numEpochsTrained: number;
  earlyStoppingTriggered?: boolean;
}

/** Writes seed 001's JSON files into a manager's experiment folder. */
export class Seed001Files {
  readonly #now: () => Date;

  constructor(
    readonly manager: CheckpointManager,
    readonly run: Seed001RunInfo,
  ) {
    this.#now = run.now ?? (() => new Date());
  }

  /** `config.json`: every configuration variable of the run. */
  saveConfig(config: Record<string, unknown>): Promise<string> {
    return this.manager.writeJson('config.json', config);
  }

  /** `training_summary.json`: start and end times, names, then the given metadata. */
  saveTrainingMetadata(metadata: TrainingMetadata): Promise<string> {
    return this.manager.writeJson('training_summary.json', {
      start_time: pythonIsoformat(this.run.startedAt),
      end_time: pythonIsoformat(this.#now()),
      model_name: this.run.modelName,
      loss_function: this.run.lossFunction,
      root_name: this.run.rootName,
      ...metadata,
    });
  }

  /** `classification_report.json`: test metrics, names, and class names (null for binary models). */
  saveClassificationReport(report: {
    test_metrics: Record<string, number>;
    class_names?: string[] | null;
    [key: string]: unknown;
  }): Promise<string> {
    const { test_metrics, class_names, ...rest } = report;
    return this.manager.writeJson('classification_report.json', {
      test_metrics,
      model_name: this.run.modelName,
      loss_function: this.run.lossFunction,
      class_names: class_names ?? null,
      ...rest,
    });
  }

  /** `minimal_logging.json`: the quick offline reference. */
  saveMinimalLogging(log: MinimalLogging): Promise<string> {
    return this.manager.writeJson('minimal_logging.json', {
      timestamp: pythonIsoformat(this.#now()),
      best_epoch: log.bestEpoch,
      [`best_${log.bestMetricName}`]: log.bestMetricValue,
      num_epochs_trained: log.numEpochsTrained,
      early_stopping_triggered: log.earlyStoppingTriggered ?? false,
    });
  }
}
