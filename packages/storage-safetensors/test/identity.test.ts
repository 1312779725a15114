// Two machines saving into one shared folder whose processes have the same
// PID (see docs/formats-and-safety.md, "Faults"): each child runs in its own
// UTS and PID namespaces, so both are PID 1, with different host names or the
// same one. Neither may take the other's save for a dead process's leftovers.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointManager } from '@ckpt/core';
import { faultsUnavailable } from '@ckpt/testkit/faults';
import { describe, expect, it } from 'vitest';
import { safetensors } from '../src/index.js';

const unavailable = faultsUnavailable();
const child = fileURLToPath(new URL('./support/host-child.mjs', import.meta.url));
const opener = fileURLToPath(new URL('./support/opener-child.mjs', import.meta.url));
const SAVES = 40;

interface Report {
  pid: number;
  host: string;
  saved: number[];
  errors: string[];
}

/** Runs the child as PID 1 of a new PID namespace, with `host` as its host name. */
function onHost(host: string, directory: string, first: number): Promise<Report> {
  const script = `hostname ${host} && exec "$0" "$@"`;
  const args = ['--uts', '--pid', '--fork', '--mount-proc', 'sh', '-c', script, process.execPath, child];
  const run = spawn('unshare', [...args, directory, 'shared', String(first), String(SAVES)], { stdio: 'pipe' });
  let out = '';
  let err = '';
  run.stdout.on('data', (b: Buffer) => {
    out += b;
  });
  run.stderr.on('data', (b: Buffer) => {
    err += b;
  });
  return new Promise((resolve, reject) => {
    run.on('close', (code) => {
      if (code !== 0) reject(new Error(`the child on ${host} failed (${code}): ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1) as string));
    });
  });
}

describe('another process opening the experiment while a save runs', () => {
  it("does not take the saving process's temporary for a crashed one", async () => {
    const directory = mkdtempSync(join(tmpdir(), 'ckpt-opening-during-save-'));
    const opening = spawn(process.execPath, [opener, directory, 'shared'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => setTimeout(resolve, 300)); // the openings are under way
      // One large save: its temporary is written for a while, outside the lock, while the other opens.
      const saver = spawnSync(process.execPath, [child, directory, 'shared', '1', '1', String(48 << 20)], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      const report: Report = JSON.parse(saver.stdout.trim().split('\n').at(-1) as string);
      expect(report.errors).toEqual([]);
      expect(report.saved).toEqual([1]);
    } finally {
      opening.kill();
    }
    const manager = await CheckpointManager.open({ directory, experiment: 'shared', storage: safetensors });
    expect((await manager.verify('all')).map((r) => r.status)).toEqual(['ok']);
    await manager.close();
    rmSync(directory, { recursive: true, force: true });
  });
});

describe.skipIf(unavailable)('two hosts, one PID, one shared folder', () => {
  for (const [what, hosts] of [
    ['different host names', ['node-a', 'node-b']],
    ['the same host name', ['trainer', 'trainer']],
  ] as const) {
    it(`with ${what}: every save of both lands and verifies`, async () => {
      const directory = mkdtempSync(join(tmpdir(), 'ckpt-two-hosts-'));
      const [a, b] = await Promise.all([onHost(hosts[0], directory, 1000), onHost(hosts[1], directory, 2000)]);
      expect([a.pid, b.pid]).toEqual([1, 1]);
      expect([a.host, b.host]).toEqual([...hosts]);
      expect({ a: a.errors, b: b.errors }).toEqual({ a: [], b: [] });
      const manager = await CheckpointManager.open({ directory, experiment: 'shared', storage: safetensors });
      const steps = (await manager.list()).map((r) => r.step).sort((x, y) => (x ?? 0) - (y ?? 0));
      expect(steps).toEqual([...a.saved, ...b.saved].sort((x, y) => x - y));
      expect(steps).toHaveLength(2 * SAVES);
      for (const result of await manager.verify('all')) expect(result.status).toBe('ok');
      await manager.close();
      rmSync(directory, { recursive: true, force: true });
    });
  }
});
