/**
 * The manager options a config file's `checkpoints:` section describes: the
 * best metric, when to save, what to keep, integrity, backups, compression.
 * The command line and the web interface open managers with these, so a
 * policy set once in `ckpt.config.yaml` holds for both.
 */
import type { Settings } from '../settings/load.js';
import type { CheckpointManagerOptions } from './options.js';
import {
  bestOnly,
  everyEpochs,
  everySeconds,
  everySteps,
  keepBest,
  keepLatest,
  type RetentionPolicy,
  type SavePolicy,
} from './policies.js';

export function managerOptions(
  settings: Settings,
): Partial<CheckpointManagerOptions> & Pick<CheckpointManagerOptions, 'storage'> {
  const c = settings.checkpoints;
  const save: SavePolicy[] = [];
  if (c.save.everyEpochs) save.push(everyEpochs(c.save.everyEpochs));
  if (c.save.everySteps) save.push(everySteps(c.save.everySteps));
  if (c.save.everySeconds) save.push(everySeconds(c.save.everySeconds));
  if (c.save.bestOnly) save.push(bestOnly());
  const retention: RetentionPolicy[] = [];
  if (c.retention.keepLast) retention.push(keepLatest(c.retention.keepLast));
  if (c.retention.keepBest) retention.push(keepBest(c.retention.keepBest));
  return {
    storage: c.format,
    best: { monitor: c.monitor, mode: c.mode },
    ...(save.length > 0 ? { savePolicy: save } : {}),
    ...(retention.length > 0 ? { retention } : {}),
    integrity: { verifyOnLoad: c.integrity.verifyOnLoad, fsync: c.integrity.fsync },
    ...(c.backup !== 'none' ? { backup: { when: c.backup } } : {}),
    compression: c.compression === 'gzip' ? 'gzip' : false,
  };
}
