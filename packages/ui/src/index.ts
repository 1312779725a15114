/**
 * @ckpt/ui: `ckpt ui`, a local web interface for every checkpoint operation
 * over the same folders and tracking database as the command line.
 */
export { assetSizes } from './assets.js';
export { startUi, type UiOptions, type UiServer } from './server.js';
export { Workspace } from './workspace.js';
