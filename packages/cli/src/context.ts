/** What every command is given: settings, output, and the plugins opened from them. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import {
  CheckpointManager,
  type CheckpointManagerOptions,
  InvalidArgumentError,
  loadCredentials,
  managerOptions,
  NotFoundError,
  openTrackingDatabase,
  StorageRegistry,
  type TrackingDatabase,
} from '@ckpt/core';
import type { Resolver } from '@ckpt/resolver-b2';
import { dcp, pytorch } from '@ckpt/storage-pytorch';
import { safetensors } from '@ckpt/storage-safetensors';
import type { CliConfig } from './config.js';
import type { Output } from './output.js';

export const INDEX_FILE = 'checkpoint_metadata.json';

export class Context {
  readonly #registry = new StorageRegistry([safetensors, pytorch, dcp]);

  constructor(
    readonly config: CliConfig,
    readonly out: Output,
    /** The settings read again, with the same flags (after `ckpt ui` saves the config file). */
    readonly reloadConfig: () => CliConfig = () => config,
  ) {}

  get registry(): StorageRegistry {
    return this.#registry;
  }

  /**
   * The manager of one experiment: `target` is an experiment folder (holding
   * `checkpoint_metadata.json`) or an experiment's name under the configured
   * directory; by default the configured experiment, or the only one there is.
   */
  async manager(target?: string, extra: Partial<CheckpointManagerOptions> = {}): Promise<CheckpointManager> {
    const { directory, experiment } = this.#locate(target);
    return CheckpointManager.open({
      directory,
      experiment,
      registry: this.#registry,
      ...managerOptions(this.config), // the config file's best, save, retention, integrity, backup, compression
      warn: (message) => this.out.warn(message),
      ...extra,
    });
  }

  #locate(target: string | undefined): { directory: string; experiment: string } {
    if (target && existsSync(join(resolve(target), INDEX_FILE))) {
      const folder = resolve(target);
      return { directory: dirname(folder), experiment: basename(folder) };
    }
    const root = this.config.checkpoints.directory;
    const name = target ?? this.config.checkpoints.experiment ?? this.#onlyExperiment(root);
    if (!existsSync(join(root, name, INDEX_FILE))) {
      throw new NotFoundError(`no experiment ${JSON.stringify(name)} in ${root}`, {
        path: join(root, name),
        expected: `one of: ${this.experimentsIn(root).join(', ') || '(none)'}; or pass an experiment folder`,
      });
    }
    return { directory: root, experiment: name };
  }

  /** Experiment folders (those with an index) under `root`. */
  experimentsIn(root: string): string[] {
    if (!existsSync(root) || !statSync(root).isDirectory()) return [];
    return readdirSync(root)
      .sort()
      .filter((name) => existsSync(join(root, name, INDEX_FILE)));
  }

  #onlyExperiment(root: string): string {
    const found = this.experimentsIn(root);
    if (found.length === 1) return found[0] as string;
    throw new InvalidArgumentError(
      found.length === 0
        ? `no experiments in ${root}: pass --dir, or set checkpoints.directory in ckpt.config.yaml`
        : `${root} holds ${found.length} experiments (${found.join(', ')}): pick one with --experiment`,
    );
  }

  /**
   * The tracking database (a SQLite file, or a postgres:// or mysql:// URL),
   * through the tracker package that opens it, loaded on first use. Commands
   * that only read never create one.
   */
  tracking(options: { readonly?: boolean } = { readonly: true }): Promise<TrackingDatabase> {
    return openTrackingDatabase(this.config.tracker.database, options);
  }

  /** The resolver (with the AWS SDK, loaded only by the commands that need it). */
  async resolver(): Promise<Resolver> {
    const { Resolver } = await import('@ckpt/resolver-b2');
    // Settings were resolved once (flags > environment > file > defaults); credentials stay out of them.
    return new Resolver({ ...this.config.resolver, credentials: loadCredentials(process.env) });
  }
}
