/**
 * @ckpt/hooks: typed event hooks with priorities, sync and async handlers,
 * isolation of failures, vetoes and timeouts; the events ckpt emits; and
 * built-in logging, validation and early-stopping hooks.
 */

// The event contract lives in @ckpt/core; re-exported here for code that imported it from @ckpt/hooks.
export {
  type AfterBackupContext,
  type AfterDownloadContext,
  type AfterExportContext,
  type AfterIntegrityCheckContext,
  type AfterLoadContext,
  type AfterSaveContext,
  type AfterUploadContext,
  type BackupContext,
  type BeforeDownloadContext,
  type BeforeIntegrityCheckContext,
  type BeforeLoadContext,
  type BeforeSaveContext,
  type BeforeUploadContext,
  type BestCheckpointContext,
  CHECKPOINT_EVENTS,
  type CheckpointEvent,
  type CheckpointEvents,
  type CheckpointInfo,
  type CheckpointSkippedContext,
  type DeleteContext,
  type EmitResult,
  type ErrorContext,
  type EventSink,
  type ExperimentEndContext,
  type ExperimentStartContext,
  type ExportContext,
  HookError,
  type MetricLoggedContext,
} from '@ckpt/core';
export {
  type EarlyStoppingOptions,
  type EarlyStoppingState,
  earlyStoppingHook,
  hasNonFinite,
  type LoggerOptions,
  loggerHook,
  type Threshold,
  type ValidationOptions,
  validationHook,
} from './builtin.js';
export {
  type HookControl,
  type HookErrorContext,
  type HookFailure,
  type HookHandler,
  type HookInfo,
  HookManager,
  type HookObject,
  type HookOptions,
  type HookResult,
} from './manager.js';
