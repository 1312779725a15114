import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointManager, fromTypedArray, type Tensor } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import { safetensors } from '../src/index.js';

// Checkpoints written by several processes: every rank's part, one commit, no coordinator.
const root = mkdtempSync(join(tmpdir(), 'ckpt-st-ranks-'));
const child = fileURLToPath(new URL('./support/rank-child.mjs', import.meta.url));
let experiments = 0;

const open = (experiment: string, extra = {}) =>
  CheckpointManager.open({ directory: root, experiment, storage: safetensors, warn: () => {}, ...extra });

const partState = (rank: number, step: number, names = [`rank${rank}.w0`, `rank${rank}.w1`]) =>
  Object.fromEntries(names.map((name) => [name, fromTypedArray(new Float32Array(4096).fill(step * 100 + rank))]));

const first = (t: Tensor) => new Float32Array(t.data.buffer, t.data.byteOffset, 1)[0];

describe('a checkpoint saved by several ranks', () => {
  it('commits once every rank has written its part, and every rank gets the same record', async () => {
    const experiment = `ranks-${++experiments}`;
    const managers = await Promise.all(Array.from({ length: 4 }, () => open(experiment)));
    const outcomes = await Promise.all(
      managers.map((m, rank) => m.save({ state: partState(rank, 3), step: 3, rank, worldSize: 4 })),
    );
    const ids = new Set(outcomes.map((o) => o.record?.id));
    expect(ids.size).toBe(1);
    const record = outcomes[0]?.record;
    expect(record?.files?.map((f) => f.file.split('/')[1])).toEqual([
      'model-00001-of-00004.safetensors',
      'model-00002-of-00004.safetensors',
      'model-00003-of-00004.safetensors',
      'model-00004-of-00004.safetensors',
      'model.safetensors.index.json',
    ]);
    const shardIndex = JSON.parse(readFileSync(record?.path as string, 'utf8'));
    expect(shardIndex.metadata.total_size).toBe(4 * 2 * 4096 * 4); // tensor bytes, as transformers writes it
    expect(shardIndex.weight_map['rank2.w1']).toBe('model-00003-of-00004.safetensors');
    const loaded = await managers[0]?.load(undefined, { verifyIntegrity: true });
    for (let rank = 0; rank < 4; rank++) expect(first(loaded?.state[`rank${rank}.w1`] as Tensor)).toBe(300 + rank);
    for (const m of managers) await m.close();
    const index = JSON.parse(readFileSync(join(root, experiment, 'checkpoint_metadata.json'), 'utf8'));
    expect(index.pending).toEqual([]);
    expect(readdirSync(join(root, experiment, '.ckpt-staging'))).toEqual([]);
  });

  it('async saves by several ranks hold the values of the call, whatever the ranks change afterwards', async () => {
    const experiment = `ranks-${++experiments}`;
    const managers = await Promise.all(Array.from({ length: 4 }, () => open(experiment, { async: true })));
    const live = managers.map((_, rank) => partState(rank, 5));
    const outcomes = await Promise.all(
      managers.map((m, rank) => m.save({ state: live[rank] as Record<string, Tensor>, step: 5, rank, worldSize: 4 })),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['pending', 'pending', 'pending', 'pending']);
    for (const state of live) for (const t of Object.values(state)) t.data.fill(0xee); // training moves on at once
    const done = await Promise.all(outcomes.map((o) => (o.status === 'pending' ? o.done : o)));
    expect(done.map((d) => d.status)).toEqual(['saved', 'saved', 'saved', 'saved']);
    const loaded = await managers[0]?.load(undefined, { verifyIntegrity: true });
    for (let rank = 0; rank < 4; rank++) expect(first(loaded?.state[`rank${rank}.w0`] as Tensor)).toBe(500 + rank);
    for (const m of managers) await m.close();
  });

  it('refuses a tensor two ranks both saved: every rank fails and nothing is committed', async () => {
    const experiment = `ranks-${++experiments}`;
    const managers = await Promise.all(Array.from({ length: 3 }, () => open(experiment)));
    const results = await Promise.allSettled(
      managers.map((m, rank) => m.save({ state: partState(rank, 1, ['shared.weight']), step: 1, rank, worldSize: 3 })),
    );
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    const reasons = results.map((r) => (r as PromiseRejectedResult).reason.message).join('\n');
    expect(reasons).toMatch(/both saved tensor "shared.weight"/);
    expect(await managers[0]?.list()).toEqual([]);
    for (const m of managers) await m.close();
    expect(
      readdirSync(join(root, experiment)).filter((n) => !n.startsWith('.') && !n.startsWith('checkpoint_')),
    ).toEqual([]);
  });

  it('a rank that never comes is waited for until gatherTimeoutMs, then the step is abandoned', async () => {
    const experiment = `ranks-${++experiments}`;
    const managers = await Promise.all(Array.from({ length: 2 }, () => open(experiment, { gatherTimeoutMs: 300 })));
    const results = await Promise.allSettled(
      managers.map((m, rank) => m.save({ state: partState(rank, 1), step: 1, rank, worldSize: 3 })),
    );
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'CKPT_CONFLICT' });
    expect(String((results[0] as PromiseRejectedResult).reason.message)).toMatch(
      /ranks? .*2.* within 300 ms|abandoned/,
    );
    expect(await managers[0]?.list()).toEqual([]);
    for (const m of managers) await m.close();
  });

  it('a rank whose write fails abandons the step at once, so the others do not wait for its part', async () => {
    const experiment = `ranks-${++experiments}`;
    const managers = await Promise.all(
      Array.from({ length: 2 }, () => open(experiment, { gatherTimeoutMs: 3_600_000 })),
    );
    const results = await Promise.allSettled([
      managers[0]?.save({ state: partState(0, 1), step: 1, rank: 0, worldSize: 2 }),
      managers[1]?.save({ state: partState(1, 1), step: 1, rank: 1, worldSize: 2, metadata: { 'ckpt.reserved': 'x' } }),
    ]);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'CKPT_INVALID_ARGUMENT' });
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'CKPT_CONFLICT' });
    expect(await managers[0]?.list()).toEqual([]);
    for (const m of managers) await m.close();
    expect(readdirSync(join(root, experiment, '.ckpt-staging'))).toEqual([]);
  });

  it('checks its arguments', async () => {
    const manager = await open(`ranks-${++experiments}`);
    await expect(manager.save({ state: partState(0, 1), step: 1, rank: 3, worldSize: 3 })).rejects.toMatchObject({
      code: 'CKPT_INVALID_ARGUMENT',
    });
    await expect(manager.save({ state: partState(0, 1), rank: 0, worldSize: 2 })).rejects.toThrow(
      /needs `step` or `epoch`/,
    );
    await expect(
      manager.save({ state: { nested: partState(0, 1) }, step: 1, rank: 0, worldSize: 2 }),
    ).rejects.toMatchObject({ code: 'CKPT_INVALID_ARGUMENT' });
    await manager.close();
  });
});

/** Runs one step's ranks as processes; kills `victim` (if any) a random moment after it opened. */
async function runStep(experiment: string, step: number, worldSize: number, victim: number | undefined) {
  const outputs: string[] = Array.from({ length: worldSize }, () => '');
  const children: ChildProcess[] = [];
  for (let rank = 0; rank < worldSize; rank++) {
    const proc = spawn(
      process.execPath,
      [child, root, experiment, String(rank), String(worldSize), String(step), '4000'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    proc.stdout?.on('data', (data: Buffer) => {
      outputs[rank] += String(data);
      if (rank === victim && outputs[rank] === 'open\n') setTimeout(() => proc.kill('SIGKILL'), Math.random() * 60);
    });
    children.push(proc);
  }
  await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : once(c, 'exit'))));
  return outputs.map((o) => o.trim().split('\n').at(-1) ?? '');
}

describe('eight processes saving together, some killed mid-save', () => {
  it('every committed step has all eight parts; a killed step leaves nothing after the next opening', async () => {
    const experiment = `ranks-${++experiments}`;
    const worldSize = 8;
    const committed = new Map<number, string>();
    for (let step = 1; step <= 5; step++) {
      const victim = step % 2 === 0 ? Math.floor(Math.random() * worldSize) : undefined;
      const lines = await runStep(experiment, step, worldSize, victim);
      const survivors = lines.filter((_, rank) => rank !== victim);
      const said = `step ${step}, rank ${victim} killed: ${JSON.stringify(lines)}`;
      if (victim === undefined) {
        expect(
          survivors.every((l) => l.startsWith('saved ')),
          said,
        ).toBe(true);
      }
      const saved = new Set(survivors.filter((l) => l.startsWith('saved ')).map((l) => l.slice(6)));
      expect(saved.size, said).toBeLessThanOrEqual(1); // never two checkpoints for one step
      if (saved.size === 1) {
        expect(
          survivors.every((l) => l.startsWith('saved ')),
          said,
        ).toBe(true); // all or none
        committed.set(step, [...saved][0] as string);
      } else {
        expect(
          survivors.every((l) => l.startsWith('failed CKPT_CONFLICT')),
          said,
        ).toBe(true);
      }
    }
    expect(committed.size).toBeGreaterThanOrEqual(3); // the three steps nobody killed

    const manager = await open(experiment);
    const records = await manager.list();
    expect(records.map((r) => r.id).sort()).toEqual([...committed.values()].sort());
    for (const record of records) {
      expect(record.files).toHaveLength(worldSize + 1);
      const { state } = await manager.load(record.id, { verifyIntegrity: true });
      for (let rank = 0; rank < worldSize; rank++) {
        expect(first(state[`rank${rank}.w0`] as Tensor)).toBe((record.step as number) * 100 + rank);
      }
    }
    await manager.close();
    const folder = join(root, experiment);
    const index = JSON.parse(readFileSync(join(folder, 'checkpoint_metadata.json'), 'utf8'));
    expect(index.pending).toEqual([]);
    expect(readdirSync(join(folder, '.ckpt-staging'))).toEqual([]);
    // No set folder under a final name without its record.
    const sets = readdirSync(folder, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.'));
    expect(sets.map((e) => e.name).sort()).toEqual(records.map((r) => r.id).sort());
  }, 120_000);
});
