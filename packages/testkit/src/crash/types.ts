/** What the recorder records and the crash models the replay knows. */

export type CrashMode = 'process-crash' | 'power-loss' | 'power-loss-ordered';
export const CRASH_MODES: readonly CrashMode[] = ['process-crash', 'power-loss', 'power-loss-ordered'];

/** One recorded call that changes files, with its paths inside the folder. */
export type FileOp =
  | { op: 'create'; path: string; fd: number; truncate: boolean; append: boolean }
  | { op: 'open'; path: string; fd: number; truncate: boolean; append: boolean }
  | { op: 'write'; fd: number; data: Buffer; offset?: number }
  | { op: 'truncate'; fd: number; length: number }
  | { op: 'allocate'; fd: number; length: number }
  | { op: 'sync'; fd: number }
  | { op: 'close'; fd: number }
  | { op: 'rename'; from: string; to: string }
  | { op: 'link'; from: string; to: string }
  | { op: 'unlink'; path: string }
  | { op: 'mkdir'; path: string };
