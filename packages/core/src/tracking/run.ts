/**
 * One experiment in any tracking database: what a training script logs into,
 * and the `Tracker` a CheckpointManager reports its checkpoints to.
 */
import type { CheckpointEvents, EventSink } from '../events.js';
import type { CheckpointRecord } from '../record.js';
import type { ExperimentInfo, Tracker } from '../tracker.js';
import type { TrackingDatabase } from './database.js';
import type { Experiment, ExperimentInput, ExperimentStatus } from './types.js';

export interface TrackedRunOptions extends ExperimentInput {
  /** Receives `experimentStart`, `experimentEnd` and `metricLogged` events. */
  hooks?: EventSink<CheckpointEvents>;
  /** Close the database when the run ends (default false). */
  closeOnEnd?: boolean;
}

export class TrackedRun implements Tracker {
  readonly name: string;
  readonly project: string;
  readonly id: number;
  readonly database: TrackingDatabase;
  readonly #hooks: EventSink<CheckpointEvents> | undefined;
  readonly #closeOnEnd: boolean;
  #ended = false;

  private constructor(database: TrackingDatabase, experiment: Experiment, options: TrackedRunOptions) {
    this.database = database;
    this.id = experiment.id;
    this.name = experiment.name;
    this.project = experiment.project;
    this.#hooks = options.hooks;
    this.#closeOnEnd = options.closeOnEnd ?? false;
  }

  /** Creates the experiment, or resumes it when one of that name exists in the project. */
  static async start(database: TrackingDatabase, options: TrackedRunOptions): Promise<TrackedRun> {
    const experiment = await database.startExperiment(options);
    const run = new TrackedRun(database, experiment, options);
    run.#emit('experimentStart', {
      experiment: experiment.name,
      project: experiment.project,
      config: experiment.config,
    });
    return run;
  }

  #emit<K extends keyof CheckpointEvents & string>(event: K, context: CheckpointEvents[K]): void {
    // Hooks observe; logging does not wait for them.
    this.#hooks?.emit(event, context).catch(() => undefined);
  }

  /** The experiment as stored now. */
  experiment(): Promise<Experiment> {
    return this.database.getExperiment(this.id);
  }

  /** Queues a point; a returned promise means a batch is being written (await it to keep memory flat). */
  logMetric(name: string, value: number, step?: number, timestamp?: number | Date): Promise<void> | undefined {
    const pending = this.database.logMetric(this.id, name, value, step, timestamp);
    if (this.#hooks) this.#emit('metricLogged', { experiment: this.name, name, value, step: step ?? null });
    return pending;
  }

  /** Several metrics at one step. */
  logMetrics(metrics: Record<string, number>, step?: number, timestamp?: number | Date): Promise<void> | undefined {
    let pending: Promise<void> | undefined;
    for (const [name, value] of Object.entries(metrics))
      pending = this.logMetric(name, value, step, timestamp) ?? pending;
    return pending;
  }

  logParams(params: Record<string, unknown>): Promise<void> {
    return this.database.logParams(this.id, params);
  }

  async setTags(tags: readonly string[], options?: { replace?: boolean }): Promise<void> {
    await this.database.setTags(this.id, tags, options);
  }

  flush(): Promise<void> {
    return this.database.flush();
  }

  /** Marks the experiment finished (default `completed`). */
  async end(status: ExperimentStatus = 'completed'): Promise<void> {
    if (this.#ended) return;
    await this.database.endExperiment(this.id, status);
    this.#ended = true;
    this.#emit('experimentEnd', { experiment: this.name, status });
    if (this.#closeOnEnd) await this.database.close();
  }

  // ------------------------------------------- core's Tracker, for a CheckpointManager

  startExperiment(_info: ExperimentInfo): void {}

  async endExperiment(_experiment: string, status: string): Promise<void> {
    // The manager closing is not the run ending: record the status, keep the run usable.
    await this.database.endExperiment(this.id, status as ExperimentStatus);
  }

  recordCheckpoint(record: CheckpointRecord): Promise<void> {
    return this.database.recordCheckpoint(this.id, record);
  }

  updateCheckpoint(record: CheckpointRecord): Promise<void> {
    return this.database.recordCheckpoint(this.id, record);
  }

  removeCheckpoint(_experiment: string, id: string): Promise<void> {
    return this.database.removeCheckpoint(this.id, id);
  }

  /** The metrics of a save, logged at its step (or its epoch when it has no step), written at once. */
  async recordMetrics(
    _experiment: string,
    metrics: Record<string, number>,
    at: { step: number | null; epoch: number | null },
  ): Promise<void> {
    this.logMetrics(metrics, at.step ?? at.epoch ?? undefined);
    await this.database.flush();
  }
}
