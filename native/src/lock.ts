/**
 * Inter-process locks, one mechanism on both paths: the owner file
 * `<path>.pid`, created exclusively and naming its holder (host, pid and the
 * process's start time, so a reused pid is not mistaken for the holder).
 * Whoever finds it may take it only from a process of this machine that no
 * longer runs. The native path also holds `flock` on `<path>` first, which
 * serialises native contenders; a process on the JavaScript fallback
 * (CKPT_NATIVE=js, or no addon) and a native one still exclude each other
 * through the owner file.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromNodeError, NativeErrorCode, nativeError } from './errors.js';
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

/** When a process started, in clock ticks since boot (Linux), or '0' where that cannot be read. */
export function processStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '0';
  } catch {
    return '0';
  }
}

/**
 * Which process table this process's pid belongs to: the host name, and on
 * Linux the kernel's boot id and the PID namespace. Two containers on one
 * machine can share a host name and both be pid 1; two machines can share a
 * host name. A pid means something only where this identity is the same, so
 * lock and save owners elsewhere are never judged dead by a pid here.
 */
function readProcessTableIdentity(): string {
  const read = (get: () => string) => {
    try {
      return get().trim();
    } catch {
      return '';
    }
  };
  const boot = read(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')).slice(0, 8);
  const namespace = /\[(\d+)\]/.exec(read(() => readlinkSync('/proc/self/ns/pid')))?.[1] ?? '';
  return [hostname(), boot, namespace].filter((part) => part !== '').join('/');
}

const IDENTITY = readProcessTableIdentity();

/** This process's pid table (read once: it does not change while the process runs). */
export function processTableIdentity(): string {
  return IDENTITY;
}

/** True when a process with this pid runs and, where start times can be read, started at `started`. */
export function processAlive(pid: number, started = '0'): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return started === '0' || processStartTime(pid) === started;
}

/** The owner file's text for this process; `flock` says it also holds the kernel lock on the path. */
const selfText = (flock: boolean) =>
  JSON.stringify({ host: IDENTITY, pid: process.pid, start: processStartTime(process.pid), flock });

/**
 * Whether the owner file's text names a holder that may still run (another
 * machine's, or a live process here). A holder in this pid table is asked
 * after by its pid. Elsewhere, a caller holding the kernel lock knows that a
 * holder which held it too has let go of it: a container that died holding
 * the lock does not block its successor, whose pid table differs. (Not used
 * here, where the pid is the better witness: a lock object dropped without
 * release frees the kernel lock when collected while its process lives on.)
 */
function ownerAlive(text: string, holdingFlock: boolean): boolean {
  let owner: { host?: unknown; pid?: unknown; start?: unknown; flock?: unknown } = {};
  try {
    owner = JSON.parse(text);
  } catch {
    return false; // a torn write by a process that died while creating it
  }
  if (typeof owner.pid !== 'number') return false;
  if (owner.host === IDENTITY) return processAlive(owner.pid, typeof owner.start === 'string' ? owner.start : '0');
  // Another machine or container: never taken, unless it held the kernel lock we now hold.
  return !(holdingFlock && owner.flock === true);
}

function readOwner(pidPath: string): string | undefined {
  try {
    return readFileSync(pidPath, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Removes the owner file of a dead holder, whose text is `dead`. It is moved
 * aside first (only one of several racing stealers can move it); if what was
 * moved is not the dead holder's file (a racer already took the lock), it is
 * linked back, never deleted.
 */
function stealFrom(pidPath: string, dead: string): void {
  const aside = `${pidPath}.${randomBytes(6).toString('hex')}.stale`;
  try {
    renameSync(pidPath, aside);
  } catch {
    return; // gone already: another contender moved it
  }
  if (readOwner(aside) !== dead) {
    try {
      linkSync(aside, pidPath);
    } catch {
      // A third contender created a fresh file meanwhile; it holds the lock.
    }
  }
  rmSync(aside, { force: true });
}

/**
 * Creates the owner file with its content already in it, or returns false when
 * it exists. (Creating it empty and then writing would let a contender read it
 * empty in between, take that for a dead holder's torn write, and steal it.)
 */
function createWhole(pidPath: string, self: string): boolean {
  const draft = `${pidPath}.${randomBytes(6).toString('hex')}.new`;
  try {
    writeFileSync(draft, self, { flag: 'wx' });
    linkSync(draft, pidPath); // atomic, and fails if the owner file exists
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw fromNodeError(error, pidPath, 'lock');
  } finally {
    rmSync(draft, { force: true });
  }
}

/**
 * The owner-file lock on `path`, shared by both implementations: the holder,
 * or null when another has it. `holdingFlock`: the caller holds the kernel
 * lock on `path` (the native path), and releases it only after this one.
 */
export function tryOwnerLock(path: string, holdingFlock = false): FileLock | null {
  const pidPath = `${path}.pid`;
  const self = selfText(holdingFlock);
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createWhole(pidPath, self)) {
      return new HeldLock(path, () => {
        // Remove the file only while it is still ours.
        if (readOwner(pidPath) === self) rmSync(pidPath, { force: true });
      });
    }
    const holder = readOwner(pidPath);
    if (holder === undefined) continue; // released meanwhile
    if (ownerAlive(holder, holdingFlock)) return null;
    stealFrom(pidPath, holder);
  }
  return null;
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
      throw nativeError(NativeErrorCode.Locked, { path, waited: timeoutMs });
    }
    await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
    delay = Math.min(delay * 2, 50);
  }
}
