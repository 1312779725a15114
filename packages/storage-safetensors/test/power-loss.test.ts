// Power loss during a save (see docs/formats-and-safety.md, "Power loss"):
// a save into an experiment that already holds a checkpoint is recorded
// system call by system call, then the folder is rebuilt as it would be after
// a crash at every point of it, as a process crash (everything done so far
// survives), a power loss (only flushed bytes and names survive) and an
// ordered power loss (names survive in order, unflushed bytes do not). Each
// rebuilt folder must open, keep the earlier checkpoint intact, and hold the
// new one either complete or not at all.
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointManager, fromTypedArray } from '@ckpt/core';
import { crashRecorderUnavailable, crashStates, type FileOp, recordFileOps } from '@ckpt/testkit/crash';
import { describe, expect, it } from 'vitest';
import { safetensors } from '../src/index.js';

const unavailable = crashRecorderUnavailable();
const child = fileURLToPath(new URL('./support/save-child.mjs', import.meta.url));
const open = (directory: string) =>
  CheckpointManager.open({ directory, experiment: 'exp', storage: safetensors, warn: () => {} });

/** The folder saved once, and a copy of it as it stood before the recorded command. */
async function experimentWithOneCheckpoint(root: string) {
  const live = join(root, 'live');
  const before = await open(live);
  const { record } = await before.save({ state: { w: fromTypedArray(new Float32Array(1024).fill(1)) }, step: 1 });
  await before.close();
  const initial = join(root, 'initial');
  cpSync(join(live, 'exp'), initial, { recursive: true });
  const file = record?.file as string;
  return { live, initial, file, bytes: readFileSync(join(live, 'exp', file)) };
}

/**
 * Rebuilds the folder at every crash point in every mode and lists what is wrong with each.
 * With `replaced`, the save's retention deletes the earlier checkpoint: it may then be gone,
 * but only once the new one is there.
 */
async function crashProblems(root: string, initial: string, ops: FileOp[], firstBytes: Buffer, replaced = false) {
  const problems: string[] = [];
  const seen = { states: 0, withNew: 0 };
  for (const state of crashStates(initial, ops)) {
    const directory = join(root, `crash-${state.calls}-${state.mode}`);
    state.materialize(join(directory, 'exp'));
    const where = `after ${state.calls} calls (${state.last}), ${state.mode}`;
    try {
      const manager = await open(directory);
      try {
        const records = await manager.list();
        const steps = records.map((r) => r.step);
        if (!steps.includes(1) && !(replaced && steps.includes(2))) {
          problems.push(`${where}: the earlier checkpoint is gone, and no new one took its place`);
        }
        if (steps.some((s) => s !== 1 && s !== 2)) problems.push(`${where}: unknown checkpoints ${steps}`);
        for (const result of await manager.verify('all')) {
          if (result.status !== 'ok') problems.push(`${where}: ${result.id} is ${result.status}`);
        }
        const kept = records.find((r) => r.step === 1);
        if (kept && !readFileSync(join(directory, 'exp', kept.file)).equals(firstBytes)) {
          problems.push(`${where}: the earlier checkpoint's bytes changed`);
        }
        const added = records.find((r) => r.step === 2);
        if (added) {
          seen.withNew++;
          const { data } = (await manager.load(added.id)).state.w as { data: Uint8Array };
          if (new Float32Array(data.buffer, data.byteOffset, 1)[0] !== 2)
            problems.push(`${where}: the new one reads wrong`);
        }
      } finally {
        await manager.close();
      }
    } catch (error) {
      problems.push(`${where}: ${(error as Error).message}`);
    }
    seen.states++;
    rmSync(directory, { recursive: true, force: true });
  }
  return { problems, ...seen };
}

describe.skipIf(unavailable)('power loss during a save', () => {
  it('every crash point recovers to the old checkpoint, or to the old and the new, never a torn one', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ckpt-power-loss-'));
    const { live, initial, bytes } = await experimentWithOneCheckpoint(root);
    const ops = recordFileOps(process.execPath, [child, live, 'exp', '2'], join(live, 'exp'));
    expect(ops.filter((o) => o.op === 'sync').length).toBeGreaterThan(0);
    expect(ops.filter((o) => o.op === 'rename').length).toBeGreaterThan(0);
    const { problems, states, withNew } = await crashProblems(root, initial, ops, bytes);
    process.stderr.write(
      `power loss: ${ops.length} calls recorded, ${states} crash states checked, ${withNew} with the new checkpoint\n`,
    );
    expect(problems).toEqual([]);
    expect(states).toBe((ops.length + 1) * 3);
    // The last cuts hold the finished save in every mode: it was flushed before the call returned.
    expect(withNew).toBeGreaterThanOrEqual(3);
    rmSync(root, { recursive: true, force: true });
  });

  it('with retention deleting the earlier checkpoint, there is always one complete checkpoint', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ckpt-power-loss-retention-'));
    const { live, initial, bytes } = await experimentWithOneCheckpoint(root);
    const ops = recordFileOps(process.execPath, [child, live, 'exp', '2', '1'], join(live, 'exp'));
    expect(ops.some((o) => o.op === 'unlink' && o.path.endsWith('.safetensors'))).toBe(true);
    const { problems, states, withNew } = await crashProblems(root, initial, ops, bytes, true);
    process.stderr.write(
      `power loss with retention: ${ops.length} calls recorded, ${states} crash states checked, ${withNew} with the new checkpoint\n`,
    );
    expect(problems).toEqual([]);
    expect(withNew).toBeGreaterThanOrEqual(3);
    rmSync(root, { recursive: true, force: true });
  });

  it('the same check catches a writer that rewrites a checkpoint in place', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ckpt-power-loss-naive-'));
    const { live, initial, file, bytes } = await experimentWithOneCheckpoint(root);
    const naive = `require('node:fs').writeFileSync(${JSON.stringify(join(live, 'exp', file))}, Buffer.alloc(${bytes.length}, 9))`;
    const ops = recordFileOps(process.execPath, ['-e', naive], join(live, 'exp'));
    const { problems } = await crashProblems(root, initial, ops, bytes);
    expect(problems.some((p) => p.includes('process-crash') && p.includes('bytes changed'))).toBe(true);
    expect(problems.some((p) => p.includes('power-loss-ordered') && p.includes('corrupted'))).toBe(true);
    rmSync(root, { recursive: true, force: true });
  });
});
