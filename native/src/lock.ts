/**
 * Inter-process locks. The native path uses `flock`, which the kernel
 * releases when the holder dies (SIGKILL included). The JavaScript fallback
 * creates `<path>.pid` exclusively and steals it only from a process on this
 * machine that no longer exists; all processes sharing a lock should use the
 * same path (they do unless one sets CKPT_NATIVE=js).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromNodeError, NativeError, NativeErrorCode } from './errors.js';
import type { FileLock, LockOptions } from './types.js';

export class HeldLock implements FileLock {
  #release: (() => void) | undefined;

  constructor(
    readonly path: string,
    release: () => void,
  ) {
    this.#release = release;
  }

  get released(): boolean {
    return this.#release === undefined;
  }

  release(): void {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The JavaScript fallback of `tryLockFile`. */
export function tryPidLock(path: string): FileLock | null {
  const pidPath = `${path}.pid`;
  const owner = JSON.stringify({ pid: process.pid, host: hostname() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(pidPath, owner, { flag: 'wx' });
      return new HeldLock(path, () => {
        // Remove the file only while it is still ours.
        if (readOwner(pidPath) === owner) rmSync(pidPath, { force: true });
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fromNodeError(error, pidPath, 'lock');
    }
    const holder = readOwner(pidPath);
    if (holder === undefined) continue; // released meanwhile
    let parsed: { pid?: unknown; host?: unknown } = {};
    try {
      parsed = JSON.parse(holder);
    } catch {
      // A torn write by a dead process: treat as abandoned below.
    }
    const alive = typeof parsed.pid === 'number' && (parsed.host !== hostname() || processExists(parsed.pid));
    if (alive) return null;
    rmSync(pidPath, { force: true });
  }
  return null;
}

function readOwner(pidPath: string): string | undefined {
  try {
    return readFileSync(pidPath, 'utf8');
  } catch {
    return undefined;
  }
}

/** Waits for the lock, polling with a growing delay, up to `timeoutMs`. */
export async function waitForLock(
  tryLock: (path: string) => FileLock | null,
  path: string,
  options: LockOptions = {},
): Promise<FileLock> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  for (;;) {
    const lock = tryLock(path);
    if (lock) return lock;
    if (Date.now() >= deadline) {
      throw new NativeError(NativeErrorCode.Locked, `${path} is locked by another process (waited ${timeoutMs} ms)`, {
        path,
      });
    }
    await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
    delay = Math.min(delay * 2, 50);
  }
}
