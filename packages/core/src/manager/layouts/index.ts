/**
 * Where checkpoints go and what they are called: presets with the seed
 * projects' exact naming, and Lightning-style filename templates.
 */
import { InvalidArgumentError } from '../../errors.js';

export interface FolderContext {
  experiment: string;
  model: string;
}

export interface FileNameContext {
  experiment: string;
  model: string;
  epoch: number | null;
  step: number | null;
  metrics: Record<string, number>;
  timestamp: Date;
}

export interface Layout {
  readonly name: string;
  /** The experiment's folder, relative to the manager's directory. */
  folder(context: FolderContext): string;
  /** A checkpoint's file name, without extension (a version is added on collision). */
  fileName(context: FileNameContext): string;
  /** The extension to use instead of the storage backend's (seed 001 writes `.ckpt`). */
  readonly extension?: string;
  /** The name of a stable copy of the best checkpoint (`best.pt`), if the layout wants one. */
  bestFile?(extension: string): string;
  /** The index file, in the experiment folder. */
  readonly indexFile: string;
  /** The backup folder, in the experiment folder. */
  readonly backupFolder: string;
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** `2025-02-12_14-30-45` (seed 001) in UTC. */
export function dashStamp(date: Date): string {
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)}_${pad(date.getUTCHours(), 2)}-${pad(date.getUTCMinutes(), 2)}-${pad(date.getUTCSeconds(), 2)}`;
}

/** `20231201_143022` (seed 003) in UTC. */
export function compactStamp(date: Date): string {
  return `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1, 2)}${pad(date.getUTCDate(), 2)}_${pad(date.getUTCHours(), 2)}${pad(date.getUTCMinutes(), 2)}${pad(date.getUTCSeconds(), 2)}`;
}

/** Python's `datetime.isoformat()` of a naive UTC time: `2025-02-12T14:30:45.123000`. */
export function pythonIsoformat(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000`;
}

const SAFE = /^[^/\\\0]+$/;

function safeSegment(value: string, what: string): string {
  if (!SAFE.test(value) || value === '.' || value === '..') {
    throw new InvalidArgumentError(`${what} ${JSON.stringify(value)} cannot be used in a file name`);
  }
  return value;
}

/**
 * The default layout, named for what it does: `<dir>/<experiment>/checkpoint_epoch_0001_step_000100_20231201_143022.<ext>`
 * (epoch, step and a UTC time stamp), `checkpoint_metadata.json` and `backups/` beside them. Seed 003's layout.
 */
export function epochStepLayout(): Layout {
  return {
    name: 'epoch-step',
    folder: ({ experiment }) => safeSegment(experiment, 'experiment'),
    fileName: ({ epoch, step, timestamp }) =>
      `checkpoint_epoch_${pad(epoch ?? 0, 4)}_step_${pad(step ?? 0, 6)}_${compactStamp(timestamp)}`,
    indexFile: 'checkpoint_metadata.json',
    backupFolder: 'backups',
  };
}

/**
 * Seed 003's layout: the default, `epochStepLayout()`.
 * @deprecated Use `epochStepLayout()`; this name stays for one release.
 */
export function seed003Layout(): Layout {
  return { ...epochStepLayout(), name: 'seed003' };
}

/** Seed 000's layout: `<base>/<model>/epoch_<n>.pt` and a stable `<base>/<model>/best.pt`. */
export function seed000Layout(options: { extension?: string } = {}): Layout {
  return {
    name: 'seed000',
    folder: ({ model }) => safeSegment(model, 'model'),
    fileName: ({ epoch }) => `epoch_${epoch ?? 0}`,
    bestFile: (extension) => `best${extension}`,
    ...(options.extension ? { extension: options.extension } : {}),
    indexFile: 'checkpoint_metadata.json',
    backupFolder: 'backups',
  };
}

/** Seed 000's `get_checkpoint_path(model_name, epoch=None)`: best.pt without an epoch. */
export function seed000Path(baseDir: string, model: string, epoch?: number | null, extension = '.pt'): string {
  const folder = `${baseDir.replace(/\/+$/, '')}/${safeSegment(model, 'model')}`;
  return epoch === undefined || epoch === null ? `${folder}/best${extension}` : `${folder}/epoch_${epoch}${extension}`;
}

export interface Seed001Options {
  /** The run's subfolder under `checkpoints/`, such as `flares/binary_classification`. */
  root: string;
  /** The loss function's name, part of the run folder's name. */
  lossFunction: string;
  /** The monitored metric named in file names (default `val_f1`). */
  monitor?: string;
}

/** The run folder name of seed 001: `YYYY-MM-DD_HH-MM-SS_<model>_<loss>`, UTC. */
export function seed001RunName(model: string, lossFunction: string, startedAt: Date): string {
  return `${dashStamp(startedAt)}_${safeSegment(model, 'model')}_${safeSegment(lossFunction, 'loss function')}`;
}

/**
 * Seed 001's layout: `<data>/checkpoints/<root>/<run>/best-epoch<XX>-<metric>-<value>.ckpt`,
 * where the experiment is the run name (`seed001RunName`).
 */
export function seed001Layout(options: Seed001Options): Layout {
  const root = options.root.replace(/^\/+|\/+$/g, '');
  for (const part of root.split('/')) safeSegment(part, 'root');
  const monitor = options.monitor ?? 'val_f1';
  return {
    name: 'seed001',
    folder: ({ experiment }) => `checkpoints/${root}/${safeSegment(experiment, 'experiment')}`,
    fileName: ({ epoch, metrics }) => {
      const value = metrics[monitor];
      return `best-epoch${pad(epoch ?? 0, 2)}-${monitor}-${value === undefined ? 'nan' : value.toFixed(3)}`;
    },
    extension: '.ckpt',
    indexFile: 'checkpoint_metadata.json',
    backupFolder: 'backups',
  };
}

/** Formats a number as Python's format spec does, for the subset templates use: `[0][width][.precision][dfe%]`. */
export function formatSpec(value: number, spec: string): string {
  const match = /^(0)?(\d+)?(?:\.(\d+))?([dfeg%])?$/.exec(spec);
  if (!match) throw new InvalidArgumentError(`unsupported format spec ${JSON.stringify(spec)}`);
  const [, zero, width, precision, type] = match;
  let text: string;
  switch (type) {
    case 'd':
      text = String(Math.trunc(value));
      break;
    case 'f':
      text = value.toFixed(precision === undefined ? 6 : Number(precision));
      break;
    case 'e':
      text = value.toExponential(precision === undefined ? 6 : Number(precision)).replace(/e([+-])(\d)$/, 'e$10$2');
      break;
    case '%':
      text = `${(value * 100).toFixed(precision === undefined ? 6 : Number(precision))}%`;
      break;
    default:
      text = precision === undefined ? String(value) : value.toPrecision(Number(precision));
  }
  if (width !== undefined && text.length < Number(width)) {
    const negative = text.startsWith('-');
    const digits = negative ? text.slice(1) : text;
    text = zero
      ? (negative ? '-' : '') + digits.padStart(Number(width) - (negative ? 1 : 0), '0')
      : text.padStart(Number(width), ' ');
  }
  return text;
}

/**
 * Lightning-style file names: `'{epoch:02d}-{val_loss:.3f}'` gives
 * `epoch=03-val_loss=0.123` (the names are inserted unless `autoInsertMetricName`
 * is false). `epoch`, `step` and any metric may be used.
 */
export function templateLayout(template: string, options: { autoInsertMetricName?: boolean } = {}): Layout {
  const insertNames = options.autoInsertMetricName ?? true;
  return {
    name: 'template',
    folder: ({ experiment }) => safeSegment(experiment, 'experiment'),
    fileName: ({ epoch, step, metrics }) => {
      const values: Record<string, number | null> = { ...metrics, epoch, step };
      const name = template.replace(/\{([^}:]+)(?::([^}]*))?\}/g, (_, key: string, spec?: string) => {
        const value = values[key];
        const text = value === undefined || value === null ? 'nan' : spec ? formatSpec(value, spec) : String(value);
        return insertNames ? `${key}=${text}` : text;
      });
      return safeSegment(name.replace(/\//g, '_'), 'file name');
    },
    indexFile: 'checkpoint_metadata.json',
    backupFolder: 'backups',
  };
}

/** The layouts by name. */
export const layouts = {
  epochStep: epochStepLayout,
  seed000: seed000Layout,
  seed001: seed001Layout,
  seed003: seed003Layout,
  template: templateLayout,
};
