import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'ckpt-tracker-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** A fresh database path in the scratch folder. */
export function databasePath(name = 'runs'): string {
  counter++;
  return join(root, `${name}-${counter}.db`);
}

export { root };
