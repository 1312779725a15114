/**
 * @ckpt/hooks: typed event hooks with priorities, sync and async handlers,
 * isolation of failures, vetoes and timeouts; the events ckpt emits; and
 * built-in logging, validation and early-stopping hooks.
 */
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
export * from './events.js';
export {
  type EmitResult,
  type HookControl,
  HookError,
  type HookErrorContext,
  type HookFailure,
  type HookHandler,
  type HookInfo,
  HookManager,
  type HookObject,
  type HookOptions,
  type HookResult,
} from './manager.js';
