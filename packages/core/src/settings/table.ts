/**
 * Every setting ckpt reads from outside code, in one table: its place in a
 * config file, its environment variable and its default. The CLI, the
 * resolver and the trackers all take their settings from `loadSettings`,
 * which reads this table; nothing else reads the environment for them.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** What a setting holds: text, a path (made absolute), a switch, a whole number >= 0, or one of a few words. */
/** `database`: a path (made absolute like `path`) or a database URL (kept as written). */
export type SettingType = 'string' | 'path' | 'database' | 'boolean' | 'count' | readonly string[];

export interface SettingRow {
  /** Where it sits in a config file and in `Settings`: `resolver.bucket.name`. */
  key: string;
  type: SettingType;
  /** Environment variables, the first set one wins. */
  env: readonly string[];
  default: string | boolean | number | undefined;
  /** One line for the docs. */
  description: string;
}

export const SETTINGS = [
  {
    key: 'checkpoints.directory',
    type: 'path',
    env: ['CKPT_DIR'],
    default: 'checkpoints',
    description: "the manager's root folder; each experiment is a subfolder",
  },
  {
    key: 'checkpoints.experiment',
    type: 'string',
    env: ['CKPT_EXPERIMENT'],
    default: undefined,
    description: 'the experiment commands act on',
  },
  {
    key: 'checkpoints.format',
    type: ['safetensors', 'pytorch'],
    env: [],
    default: 'safetensors',
    description: 'the format of new checkpoints',
  },
  {
    key: 'checkpoints.monitor',
    type: 'string',
    env: [],
    default: 'val_loss',
    description: 'the metric that ranks checkpoints',
  },
  { key: 'checkpoints.mode', type: ['min', 'max'], env: [], default: 'min', description: 'which way is better' },
  {
    key: 'checkpoints.save.everyEpochs',
    type: 'count',
    env: [],
    default: undefined,
    description: 'save every n epochs (with the other save settings: all must agree)',
  },
  { key: 'checkpoints.save.everySteps', type: 'count', env: [], default: undefined, description: 'save every n steps' },
  {
    key: 'checkpoints.save.everySeconds',
    type: 'count',
    env: [],
    default: undefined,
    description: 'save at most every n seconds',
  },
  {
    key: 'checkpoints.save.bestOnly',
    type: 'boolean',
    env: [],
    default: undefined,
    description: 'save only when the monitored metric improves',
  },
  {
    key: 'checkpoints.retention.keepLast',
    type: 'count',
    env: [],
    default: undefined,
    description: 'keep the latest n (with keepBest: what either keeps stays)',
  },
  {
    key: 'checkpoints.retention.keepBest',
    type: 'count',
    env: [],
    default: undefined,
    description: 'keep the best k by the monitored metric',
  },
  {
    key: 'checkpoints.integrity.verifyOnLoad',
    type: 'boolean',
    env: [],
    default: false,
    description: 'check the SHA-256 before every load',
  },
  {
    key: 'checkpoints.integrity.fsync',
    type: 'boolean',
    env: [],
    default: true,
    description: 'flush every write to the disk',
  },
  {
    key: 'checkpoints.backup',
    type: ['none', 'best', 'all'],
    env: [],
    default: 'none',
    description: 'copy new checkpoints to the backup folder',
  },
  {
    key: 'checkpoints.compression',
    type: ['none', 'gzip'],
    env: [],
    default: 'none',
    description: 'compress checkpoint files',
  },
  {
    key: 'tracker.database',
    type: 'database',
    env: ['CKPT_DATABASE'],
    default: 'ckpt.db',
    description: 'the tracking database: a SQLite file, or a postgres:// or mysql:// URL',
  },
  { key: 'tracker.project', type: 'string', env: [], default: 'default', description: 'the tracking project' },
  {
    key: 'resolver.cacheDir',
    type: 'path',
    env: ['CKPT_CACHE_DIR'],
    default: join(homedir(), '.cache', 'ckpt', 'checkpoints'),
    description: 'where resolved checkpoints are cached',
  },
  {
    key: 'resolver.offline',
    type: 'boolean',
    env: ['CKPT_OFFLINE', 'HF_HUB_OFFLINE'],
    default: false,
    description: 'never touch the network',
  },
  {
    key: 'resolver.bucket.enabled',
    type: 'boolean',
    env: ['CKPT_BUCKET_ENABLED'],
    default: false,
    description: 'fetch missing files from the bucket',
  },
  {
    key: 'resolver.bucket.name',
    type: 'string',
    env: ['CKPT_BUCKET_NAME'],
    default: '',
    description: 'the bucket',
  },
  {
    key: 'resolver.bucket.prefix',
    type: 'string',
    env: ['CKPT_BUCKET_PREFIX'],
    default: '',
    description: 'prepended to names: `modelZoo/`',
  },
  {
    key: 'resolver.bucket.endpoint',
    type: 'string',
    env: ['CKPT_S3_ENDPOINT'],
    default: undefined,
    description: 'the S3 endpoint (B2, MinIO, ...)',
  },
  {
    key: 'resolver.bucket.region',
    type: 'string',
    env: ['CKPT_S3_REGION'],
    default: undefined,
    description: 'default: from a B2 endpoint, else us-east-1',
  },
  {
    key: 'resolver.bucket.forcePathStyle',
    type: 'boolean',
    env: ['CKPT_S3_PATH_STYLE'],
    default: undefined,
    description: 'path-style URLs, as local servers need',
  },
] as const satisfies readonly SettingRow[];

export type SettingKey = (typeof SETTINGS)[number]['key'];
