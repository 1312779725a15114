import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { type Implementation, implementationOf } from '../src/index.js';

/** Both implementations: every behaviour is checked on each. */
export const implementations: Implementation[] = [implementationOf('native'), implementationOf('js')];

/** A fresh folder removed after the suite. */
export function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-native-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function writeRandom(dir: string, name: string, size: number): { path: string; bytes: Buffer } {
  const bytes = randomBytes(size);
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, bytes };
}

export const isRoot = process.getuid?.() === 0;
