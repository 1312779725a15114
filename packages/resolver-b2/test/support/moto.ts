/**
 * Vitest global setup: a real S3-compatible server (moto, from the project's
 * Python venv) on 127.0.0.1, for the whole run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

const venvPython = fileURLToPath(new URL('../../../../tools/python/.venv/bin/python', import.meta.url));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts moto on a free port and waits until it answers. */
export async function startMoto(): Promise<{ endpoint: string; process: ChildProcess }> {
  const python = process.env.CKPT_PYTHON ?? (existsSync(venvPython) ? venvPython : 'python3');
  const port = await freePort();
  const child = spawn(python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null)
      throw new Error(`moto exited (${child.exitCode}): ${stderr}\nInstall it: pip install "moto[server]"`);
    try {
      await fetch(`${endpoint}/moto-api/`);
      return { endpoint, process: child };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  child.kill();
  throw new Error(`moto did not start on ${endpoint}: ${stderr}`);
}

export default async function setup(project: TestProject) {
  const { endpoint, process: child } = await startMoto();
  project.provide('s3Endpoint', endpoint);
  return () => {
    child.kill();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
  }
}
