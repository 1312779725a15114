// Clock and identity (see docs/formats-and-safety.md, "Faults"): a wall clock
// that goes backwards or jumps during a run must not reorder, overwrite or
// stop checkpoints.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointManager, CkptError, everySeconds, fromTypedArray, type StateTree } from '@ckpt/core';
import { describe, expect, it } from 'vitest';
import { safetensors } from '../src/index.js';

const state = (fill: number): StateTree => ({ w: fromTypedArray(new Float32Array(64).fill(fill)) });
const T0 = Date.parse('2026-12-01T10:00:00Z');

/** A manager whose clock the test sets. */
async function withClock(options: { savePolicy?: ReturnType<typeof everySeconds> } = {}) {
  const clock = { now: T0 };
  const directory = mkdtempSync(join(tmpdir(), 'ckpt-clock-'));
  const manager = await CheckpointManager.open({
    directory,
    experiment: 'clock',
    storage: safetensors,
    now: () => new Date(clock.now),
    warn: () => {},
    ...options,
  });
  return { clock, manager, folder: join(directory, 'clock') };
}

describe('a clock that goes backwards', () => {
  it('keeps the order of saves: the latest is the last saved, whatever its timestamp', async () => {
    const { clock, manager } = await withClock();
    await manager.save({ state: state(1), step: 1 });
    clock.now = T0 - 3600_000;
    await manager.save({ state: state(2), step: 2 });
    clock.now = T0 - 7200_000;
    await manager.save({ state: state(3), step: 3 });
    expect((await manager.latest())?.step).toBe(3);
    expect((await manager.list()).map((r) => r.step)).toEqual([1, 2, 3]);
    for (const result of await manager.verify('all')) expect(result.status).toBe('ok');
    await manager.close();
  });

  it('never overwrites a checkpoint whose name comes round again', async () => {
    const { clock, manager, folder } = await withClock();
    const { record: first } = await manager.save({ state: state(1), step: 1 });
    const bytes = readFileSync(join(folder, first?.file as string));
    clock.now = T0 - 1000;
    await manager.save({ state: state(2), step: 2 });
    clock.now = T0; // the same step at the same second: the same name as the first
    const again = await manager.save({ state: state(9), step: 1 }).then(
      (outcome) => outcome.record,
      (error: unknown) => {
        expect(error).toBeInstanceOf(CkptError);
        return undefined;
      },
    );
    expect(again?.file).not.toBe(first?.file);
    expect(readFileSync(join(folder, first?.file as string)).equals(bytes)).toBe(true);
    for (const result of await manager.verify('all')) expect(result.status).toBe('ok');
    await manager.close();
  });

  it('does not stop everySeconds: a save after the clock went back is taken', async () => {
    const { clock, manager } = await withClock({ savePolicy: everySeconds(60) });
    expect((await manager.save({ state: state(1), step: 1 })).record).toBeTruthy();
    clock.now = T0 + 10_000;
    expect((await manager.save({ state: state(2), step: 2 })).record).toBeFalsy(); // 10 s: not yet
    clock.now = T0 - 3600_000; // an hour back (a corrected clock)
    expect((await manager.save({ state: state(3), step: 3 })).record).toBeTruthy();
    clock.now = T0 - 3600_000 + 61_000;
    expect((await manager.save({ state: state(4), step: 4 })).record).toBeTruthy();
    await manager.close();
  });

  it('saves at once after a jump forward, and keeps counting from there', async () => {
    const { clock, manager } = await withClock({ savePolicy: everySeconds(60) });
    await manager.save({ state: state(1), step: 1 });
    clock.now = T0 + 365 * 86_400_000;
    expect((await manager.save({ state: state(2), step: 2 })).record).toBeTruthy();
    clock.now += 1000;
    expect((await manager.save({ state: state(3), step: 3 })).record).toBeFalsy();
    await manager.close();
  });
});
