/**
 * The CLI's settings: `loadSettings` from @ckpt/core with the global flags
 * as its top layer, so one precedence holds for every setting: flags >
 * environment variables > `ckpt.config.yaml` (or `.yml` / `.json`, found in
 * the working folder or named by `--config` / `CKPT_CONFIG`) > defaults.
 * Unknown keys and wrong types are refused with the key's path.
 */
import { CONFIG_NAMES, loadSettings, type Settings } from '@ckpt/core';

export { CONFIG_NAMES };

/** Everything one run of the CLI is configured by. */
export type CliConfig = Settings;

/** Flags that override the file and the environment. */
export interface ConfigFlags {
  config?: string;
  dir?: string;
  experiment?: string;
  database?: string;
  offline?: boolean;
}

/** Settings for one run of the CLI. Relative paths are taken from the config file's folder, else `cwd`. */
export function loadConfig(
  flags: ConfigFlags = {},
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): CliConfig {
  return loadSettings({
    env,
    cwd,
    ...(flags.config ? { configFile: flags.config } : {}),
    flags: {
      'checkpoints.directory': flags.dir,
      'checkpoints.experiment': flags.experiment,
      'tracker.database': flags.database,
      // `--offline` can only switch offline on; without it, the lower layers decide.
      'resolver.offline': flags.offline ? true : undefined,
    },
  });
}
