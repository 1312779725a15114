export { type Credentials, loadCredentials } from './credentials.js';
export { checkValue as checkSetting, type Layer, readResolverFile, readSettingsFile } from './file.js';
export {
  type BucketSettings,
  CONFIG_NAMES,
  type LoadSettingsOptions,
  loadSettings,
  type ResolverSettings,
  type Settings,
  type SettingValues,
} from './load.js';
export { SETTINGS, type SettingKey, type SettingRow, type SettingType } from './table.js';
