/**
 * Fuzzing for ckpt's readers and for third-party plugins (`@ckpt/testkit/fuzz`):
 * the runner, byte mutations, hostile JSON, generated state trees.
 */
export { default as fc } from 'fast-check';
export { applyEdits, mutatedBytes } from './bytes.js';
export { hostileJsonVariants } from './json.js';
export { type FuzzOptions, type FuzzSummary, fuzz, fuzzSeed } from './run.js';
export {
  fuzzRoundTrip,
  type StateTreeOptions,
  stateDifference,
  stateKeys,
  stateTrees,
  tensors,
} from './trees.js';
