import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { CheckpointManager, type CheckpointManagerOptions, fromTypedArray, type Tensor } from '../../src/index.js';
import { testBackend } from './test-backend.mjs';

export { testBackend };

/** A fresh folder, removed after the file's tests. */
export function scratch(prefix = 'ckpt-manager-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let counter = 0;
/** A unique experiment name. */
export function uniqueName(base = 'exp'): string {
  counter++;
  return `${base}-${counter}`;
}

/** An F32 tensor of `n` values, `value + i / n`. */
export function weights(n: number, value: number): Tensor {
  return fromTypedArray(Float32Array.from({ length: n }, (_, i) => value + i / n));
}

export function sha256OfFile(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A clock the test moves by hand. */
export function manualClock(start = Date.UTC(2023, 11, 1, 14, 30, 22)) {
  let now = start;
  return {
    now: () => new Date(now),
    advance(ms: number) {
      now += ms;
    },
  };
}

export interface Opened {
  manager: CheckpointManager;
  warnings: string[];
}

/** Opens a manager on the test backend with fsync off (the crash tests turn it on), collecting warnings. */
export async function openManager(directory: string, options: Partial<CheckpointManagerOptions> = {}): Promise<Opened> {
  const warnings: string[] = [];
  const manager = await CheckpointManager.open({
    directory,
    experiment: 'exp',
    storage: testBackend(),
    integrity: { fsync: false },
    warn: (message) => warnings.push(message),
    ...options,
  });
  return { manager, warnings };
}
