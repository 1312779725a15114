/**
 * What the UI serves: the experiments under the checkpoint folder, each
 * opened through a CheckpointManager, and the tracking database, all from the
 * same settings the CLI uses. Reading opens managers read-only; an action
 * opens one read-write for its own duration, so a training process writing
 * the same folder keeps its locks and recovery to itself.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  CheckpointManager,
  type CheckpointManagerOptions,
  managerOptions,
  NotFoundError,
  openTrackingDatabase,
  parseDatabaseLocation,
  type Settings,
  StorageRegistry,
  type TrackingDatabase,
} from '@ckpt/core';
import { pytorch } from '@ckpt/storage-pytorch';
import { safetensors } from '@ckpt/storage-safetensors';

export const INDEX_FILE = 'checkpoint_metadata.json';

/** An experiment name as a folder name: one path segment, nothing hidden. */
export function isExperimentName(name: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.+=@-]{0,199}$/.test(name) && name !== '..';
}

export class Workspace {
  readonly registry = new StorageRegistry([safetensors, pytorch]);
  readonly warnings: string[] = [];
  #store: Promise<TrackingDatabase> | undefined;
  /** Read-only managers kept open: opening reconciles the whole folder, reading the index is a stat. */
  readonly #readers = new Map<string, Promise<CheckpointManager>>();

  #settings: Settings;

  constructor(settings: Settings) {
    this.#settings = settings;
  }

  get settings(): Settings {
    return this.#settings;
  }

  /** New settings (the settings page saved): managers opened from now on use them. */
  async replaceSettings(settings: Settings): Promise<void> {
    this.#settings = settings;
    const readers = [...this.#readers.values()];
    this.#readers.clear();
    await Promise.all(readers.map((opening) => opening.then((m) => m.close()).catch(() => undefined)));
  }

  get root(): string {
    return this.settings.checkpoints.directory;
  }

  /** Experiment folders (those with an index) under the root, sorted. */
  experiments(): string[] {
    const root = this.root;
    if (!existsSync(root) || !statSync(root).isDirectory()) return [];
    return readdirSync(root)
      .filter((name) => isExperimentName(name) && existsSync(join(root, name, INDEX_FILE)))
      .sort();
  }

  /** Whether `name` is an experiment folder (with an index) under the root: one stat, no listing. */
  has(name: string): boolean {
    return isExperimentName(name) && existsSync(join(this.root, name, INDEX_FILE));
  }

  /** The folder of experiment `name`, which must exist (NotFoundError otherwise). */
  folder(name: string): string {
    if (!this.has(name)) {
      throw new NotFoundError(`no experiment ${JSON.stringify(name)} in ${this.root}`, {
        expected: `one of: ${this.experiments().join(', ') || '(none)'}`,
      });
    }
    return join(this.root, name);
  }

  #options(name: string): CheckpointManagerOptions {
    this.folder(name);
    return {
      directory: this.root,
      experiment: name,
      registry: this.registry,
      ...managerOptions(this.settings),
      warn: (message) => {
        this.warnings.push(message);
        if (this.warnings.length > 50) this.warnings.shift();
      },
    };
  }

  /** Runs `read` on a read-only manager of `name`. */
  async read<T>(
    name: string,
    read: (manager: CheckpointManager) => Promise<T>,
    extra: Partial<CheckpointManagerOptions> = {},
  ): Promise<T> {
    if (Object.keys(extra).length > 0) {
      const manager = await CheckpointManager.open({ ...this.#options(name), ...extra, readOnly: true });
      try {
        return await read(manager);
      } finally {
        await manager.close();
      }
    }
    let opening = this.#readers.get(name);
    if (!opening) {
      opening = CheckpointManager.open({ ...this.#options(name), readOnly: true });
      this.#readers.set(name, opening);
      opening.catch(() => this.#readers.delete(name));
    }
    return read(await opening);
  }

  /** Runs `change` on a read-write manager of `name`, closed afterwards (the journal folded, the lock free). */
  async change<T>(
    name: string,
    change: (manager: CheckpointManager) => Promise<T>,
    extra: Partial<CheckpointManagerOptions> = {},
  ): Promise<T> {
    const manager = await CheckpointManager.open({ ...this.#options(name), ...extra });
    try {
      return await change(manager);
    } finally {
      await manager.close();
    }
  }

  /** The tracking database, read-only, or undefined when there is none yet. */
  async store(): Promise<TrackingDatabase | undefined> {
    if (this.#store) return this.#store;
    const location = parseDatabaseLocation(this.settings.tracker.database);
    if (location.kind === 'sqlite' && !existsSync(location.target)) return undefined;
    const opening = openTrackingDatabase(this.settings.tracker.database, {
      readonly: true,
      connect: { cache: { ttlMs: 500 } },
    });
    this.#store = opening;
    opening.catch(() => {
      if (this.#store === opening) this.#store = undefined; // try again on the next request
    });
    return opening;
  }

  /** The tracker's id of an experiment named like its folder: in the configured project, else in `default`. */
  async trackedId(store: TrackingDatabase, name: string): Promise<number | undefined> {
    for (const project of new Set([this.settings.tracker.project, 'default'])) {
      try {
        return (await store.getExperiment(name, project)).id;
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    }
    return undefined;
  }

  async close(): Promise<void> {
    const store = this.#store;
    this.#store = undefined;
    await store?.then((opened) => opened.close()).catch(() => undefined);
    const readers = [...this.#readers.values()];
    this.#readers.clear();
    await Promise.all(readers.map((opening) => opening.then((m) => m.close()).catch(() => undefined)));
  }
}
