/**
 * Faults of real machines for tests: a small filesystem that fills up, turns
 * read-only or is taken away. It is a tmpfs of a few megabytes mounted by the
 * test (as root) in a temporary folder and unmounted after.
 *
 * Where mounting is impossible (not root, no mount namespace), the fault
 * tests skip with the reason, unless `CKPT_REQUIRE_FAULT_TESTS=1` (set in CI)
 * turns that into a failure.
 */

import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why small filesystems cannot be mounted here, or undefined when they can. */
export function faultsUnavailable(): string | undefined {
  if (cachedReason !== null) return cachedReason;
  cachedReason = probe();
  if (cachedReason && process.env.CKPT_REQUIRE_FAULT_TESTS === '1') {
    throw new Error(`CKPT_REQUIRE_FAULT_TESTS=1, but the fault tests cannot run: ${cachedReason}`);
  }
  return cachedReason;
}

let cachedReason: string | undefined | null = null;

function probe(): string | undefined {
  if (process.platform !== 'linux') return `tmpfs mounts are Linux-only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  try {
    smallDisk(1 << 20).close();
    return undefined;
  } catch (error) {
    return `mount -t tmpfs failed: ${(error as Error).message.split('\n')[0]}`;
  }
}

export interface SmallDisk {
  /** The mount point. */
  readonly path: string;
  /** Bytes still free. */
  available(): number;
  /** Writes a filler file until at most `leave` bytes are free. */
  fill(leave?: number): void;
  /** Deletes the filler. */
  free(): void;
  /** Remounts read-only (true) or read-write (false). */
  readOnly(on: boolean): void;
  /** Unmounts and removes the mount point. */
  close(): void;
}

/** Mounts a tmpfs of `bytes` (rounded up to pages) in a new temporary folder. */
export function smallDisk(bytes: number): SmallDisk {
  const path = mkdtempSync(join(tmpdir(), 'ckpt-small-disk-'));
  const size = `size=${Math.ceil(bytes / 4096) * 4096}`;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `${size},mode=0777`, 'ckpt-small-disk', path], { stdio: 'pipe' });
  } catch (error) {
    rmSync(path, { recursive: true, force: true });
    throw error;
  }
  const filler = join(path, '.filler');
  const available = () => {
    const s = statfsSync(path);
    return s.bavail * s.bsize;
  };
  let mounted = true;
  return {
    path,
    available,
    fill(leave = 0) {
      const fd = openSync(filler, 'a');
      const block = Buffer.alloc(64 * 1024, 0xee);
      try {
        for (let free = available(); free > leave; free = available()) {
          writeSync(fd, block, 0, Math.min(block.length, free - leave));
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        closeSync(fd);
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    readOnly(on) {
      execFileSync('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, path], { stdio: 'pipe' });
    },
    close() {
      if (!mounted) return;
      mounted = false;
      execFileSync('umount', ['--lazy', path], { stdio: 'pipe' });
      rmSync(path, { recursive: true, force: true });
    },
  };
}
