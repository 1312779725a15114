/**
 * Power-loss simulation without a virtual machine, in the manner of ALICE and
 * CrashMonkey: a command runs under `strace`, which records every system
 * call that changes files under one folder (creates, writes, truncations,
 * renames, links, unlinks, flushes); the recording is then replayed onto a
 * model of the folder, cut after each call, and each cut is written out as
 * the folder a machine could come back to:
 *
 * - `process-crash`: everything done so far survives (the kernel still had it);
 * - `power-loss`: only what was flushed survives: a file's bytes as of its
 *   last fsync/fdatasync, and a folder's names as of its last fsync;
 * - `power-loss-ordered`: names and sizes survive in order (a journaling
 *   filesystem commits metadata in order) but unflushed bytes do not: they
 *   read as zeros. This is where a file renamed into place, or rewritten in
 *   place, before it was flushed comes back empty or zeroed.
 *
 * Only a single folder level is modelled (the experiment folder); names in
 * subfolders are tracked by path like any other.
 */
export { type CrashState, crashStates } from './model.js';
export { crashRecorderUnavailable, type FileOp, parseTrace, recordFileOps } from './record.js';
export { CRASH_MODES, type CrashMode } from './types.js';
