/** @ckpt/cli: the `ckpt` command, usable as a library too (`main(argv)` returns the exit code). */
export { type CliConfig, CONFIG_NAMES, type ConfigFlags, loadConfig } from './config.js';
export { Context } from './context.js';
export { Output } from './output.js';
export { EXIT, main } from './program.js';
