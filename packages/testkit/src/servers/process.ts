/** Running server programs for tests: as another user when root, with output kept for the error message. */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

export interface Run {
  user?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
}

/** Runs `program args` and returns stdout; throws with stderr when it fails. */
export function run(program: string, args: readonly string[], options: Run = {}): string {
  const asUser = options.user && process.getuid?.() === 0;
  const [command, argv] = asUser
    ? ['runuser', ['-u', options.user as string, '--', program, ...args]]
    : [program, [...args]];
  const result = spawnSync(command, argv, {
    encoding: 'utf8',
    env: { ...process.env, ...options.env },
    input: options.input,
    timeout: options.timeoutMs ?? 120_000,
  });
  if (result.error) throw new Error(`${program}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`${program} ${args.join(' ')} exited with ${result.status}: ${result.stderr || result.stdout}`);
  }
  return result.stdout;
}

/** The newest folder among `/usr/lib/postgresql/<version>/bin`, or a program on PATH. */
export function findProgram(name: string, folders: readonly string[]): string {
  for (const folder of folders) if (existsSync(`${folder}/${name}`)) return `${folder}/${name}`;
  for (const folder of (process.env.PATH ?? '').split(':'))
    if (existsSync(`${folder}/${name}`)) return `${folder}/${name}`;
  throw new Error(
    `${name} not found (looked in ${[...folders, '$PATH'].join(', ')}): install the server (bash .ci/run does, from Debian)`,
  );
}

export function postgresFolders(): string[] {
  const root = '/usr/lib/postgresql';
  const fromEnv = process.env.CKPT_PG_BIN ? [process.env.CKPT_PG_BIN] : [];
  if (!existsSync(root)) return fromEnv;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  return [...fromEnv, ...versions.map((v) => `${root}/${v}/bin`)];
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
