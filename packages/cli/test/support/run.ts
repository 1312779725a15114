/** Runs the built `ckpt` binary as a subprocess, as a user would. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../dist/bin.js', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws with the output when it is not). */
  // biome-ignore lint/suspicious/noExplicitAny: tests read the JSON they expect
  json: <T = any>() => T;
}

export function ckpt(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Run {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    encoding: 'utf8',
    // An undefined value removes the variable.
    env: Object.fromEntries(
      Object.entries({ ...process.env, NO_COLOR: '1', CKPT_NO_PROGRESS: '1', ...options.env }).filter(
        ([, value]) => value !== undefined,
      ),
    ),
    timeout: 120_000,
  });
  return {
    code: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    json: () => {
      try {
        return JSON.parse(result.stdout);
      } catch {
        throw new Error(`not JSON (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
      }
    },
  };
}

export function scratch(name: string): string {
  return mkdtempSync(join(tmpdir(), `ckpt-cli-${name}-`));
}
