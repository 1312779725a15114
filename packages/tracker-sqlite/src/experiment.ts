/**
 * One experiment: what a training script logs into, and the tracker a
 * CheckpointManager reports its checkpoints to.
 */
import type { CheckpointEvents, CheckpointRecord, EventSink, ExperimentInfo, Tracker } from '@ckpt/core';
import {
  ClosedError,
  type Experiment,
  type ExperimentInput,
  type ExperimentStatus,
  TrackingStore,
  type TrackingStoreOptions,
} from './store.js';

export interface ExperimentTrackerOptions extends ExperimentInput {
  /** The database file (created if missing), or an open store shared with other trackers. */
  database: string | TrackingStore;
  /** Options for a database opened here. */
  store?: TrackingStoreOptions;
  /** Receives `experimentStart`, `experimentEnd` and `metricLogged` events. */
  hooks?: EventSink<CheckpointEvents>;
}

export class ExperimentTracker implements Tracker {
  readonly name: string;
  readonly project: string;
  readonly id: number;
  readonly store: TrackingStore;
  readonly #ownsStore: boolean;
  readonly #hooks: EventSink<CheckpointEvents> | undefined;
  #ended = false;

  private constructor(
    store: TrackingStore,
    experiment: Experiment,
    ownsStore: boolean,
    hooks?: EventSink<CheckpointEvents>,
  ) {
    this.store = store;
    this.id = experiment.id;
    this.name = experiment.name;
    this.project = experiment.project;
    this.#ownsStore = ownsStore;
    this.#hooks = hooks;
  }

  /** Creates the experiment, or resumes it when one of that name exists in the project. */
  static open(options: ExperimentTrackerOptions): ExperimentTracker {
    const owns = typeof options.database === 'string';
    const store =
      typeof options.database === 'string' ? TrackingStore.open(options.database, options.store) : options.database;
    try {
      const experiment = store.startExperiment(options);
      const tracker = new ExperimentTracker(store, experiment, owns, options.hooks);
      tracker.#emit('experimentStart', {
        experiment: experiment.name,
        project: experiment.project,
        config: experiment.config,
      });
      return tracker;
    } catch (error) {
      if (owns) store.close();
      throw error;
    }
  }

  #assertOpen(): void {
    if (this.store.closed) throw new ClosedError(`the tracker of experiment ${this.name}`);
  }

  #emit<K extends keyof CheckpointEvents & string>(event: K, context: CheckpointEvents[K]): void {
    // Hooks observe; a tracker does not wait for them (logging must stay fast).
    this.#hooks?.emit(event, context).catch(() => undefined);
  }

  /** The experiment as stored now. */
  get experiment(): Experiment {
    this.#assertOpen();
    return this.store.getExperiment(this.id);
  }

  logMetric(name: string, value: number, step?: number, timestamp?: number | Date): void {
    this.store.logMetric(this.id, name, value, step, timestamp); // throws ClosedError once closed
    if (this.#hooks) this.#emit('metricLogged', { experiment: this.name, name, value, step: step ?? null });
  }

  /** Several metrics at one step. */
  logMetrics(metrics: Record<string, number>, step?: number, timestamp?: number | Date): void {
    for (const [name, value] of Object.entries(metrics)) this.logMetric(name, value, step, timestamp);
  }

  logParams(params: Record<string, unknown>): void {
    this.#assertOpen();
    this.store.logParams(this.id, params);
  }

  setTags(tags: readonly string[], options?: { replace?: boolean }): void {
    this.#assertOpen();
    this.store.setTags(this.id, tags, options);
  }

  /** Writes buffered metric points now. */
  flush(): void {
    this.#assertOpen();
    this.store.flush();
  }

  /** Marks the experiment finished (default `completed`) and, if it opened the database, closes it. */
  end(status: ExperimentStatus = 'completed'): void {
    if (this.#ended) return;
    this.#assertOpen();
    this.store.endExperiment(this.id, status);
    this.#ended = true;
    this.#emit('experimentEnd', { experiment: this.name, status });
    if (this.#ownsStore) this.store.close();
  }

  // ------------------------------------------- core's Tracker, for a CheckpointManager

  startExperiment(_info: ExperimentInfo): void {
    this.#assertOpen();
  }

  endExperiment(_experiment: string, status: string): void {
    // The manager closing is not the experiment ending: record the status, keep the tracker usable.
    this.#assertOpen();
    this.store.endExperiment(this.id, status as ExperimentStatus);
  }

  recordCheckpoint(record: CheckpointRecord): void {
    this.#assertOpen();
    this.store.recordCheckpoint(this.id, record);
  }

  updateCheckpoint(record: CheckpointRecord): void {
    this.#assertOpen();
    this.store.recordCheckpoint(this.id, record);
  }

  removeCheckpoint(_experiment: string, id: string): void {
    this.#assertOpen();
    this.store.removeCheckpoint(this.id, id);
  }

  /** The metrics of a save, logged at its step (or its epoch when it has no step). */
  recordMetrics(
    _experiment: string,
    metrics: Record<string, number>,
    at: { step: number | null; epoch: number | null },
  ): void {
    this.logMetrics(metrics, at.step ?? at.epoch ?? undefined);
  }
}
