import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Thousands of generated hostile variants of real files (torch zip and legacy, Lightning, TorchScript,
// safetensors, picklescan's payloads), each opened by the backends in a child process capped at 1 GiB of
// heap and two minutes: each must load or be refused with a typed CkptError, within 5 s.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const fuzzer = join(root, 'tools', 'fuzz', 'mutate.mjs');

function seedFiles(): string[] {
  const pt = join(root, 'packages', 'storage-pytorch', 'test', 'fixtures');
  const st = join(root, 'packages', 'storage-safetensors', 'test', 'fixtures');
  const corpus = join(root, 'packages', 'storage-pytorch', 'test', 'corpus', 'picklescan', 'data');
  return [
    ...readdirSync(pt)
      .filter((n) => !n.endsWith('.json'))
      .map((n) => join(pt, n)),
    ...readdirSync(st)
      .filter((n) => n.endsWith('.safetensors'))
      .map((n) => join(st, n)),
    ...readdirSync(corpus)
      .filter((n) => /\.(pt|pth|bin|ckpt|pkl)$/.test(n))
      .slice(0, 20)
      .map((n) => join(corpus, n)),
  ];
}

describe('mutation fuzzing under a memory and time watchdog', () => {
  it.each([20261201, 7])(
    'seed %i: 4,000 variants, every one loaded or refused with a typed error',
    (seed) => {
      const seeds = seedFiles();
      expect(seeds.length).toBeGreaterThan(8);
      const run = spawnSync(
        process.execPath,
        [
          '--max-old-space-size=1024',
          fuzzer,
          '--seed',
          String(seed),
          '--count',
          '4000',
          '--budget-ms',
          '5000',
          ...seeds,
        ],
        { encoding: 'utf8', timeout: 120_000, cwd: root },
      );
      expect(run.signal, 'the watchdog did not have to stop it').toBeNull();
      const summary = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}');
      expect(summary.findings, run.stderr).toEqual([]);
      expect(run.status).toBe(0);
      expect(summary.count).toBe(4000);
      expect(summary.refused).toBeGreaterThan(1000); // the mutations do reach the checks
      expect(summary.accepted).toBeGreaterThan(10); // and some variants are still valid files
    },
    150_000,
  );
});
