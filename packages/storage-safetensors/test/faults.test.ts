// Faults of real machines under the manager (see docs/formats-and-safety.md,
// "Faults"): a folder turned read-only, a process denied permission, a
// checkpoint truncated while its tensors are mapped, and the experiment
// folder deleted while a manager runs. Each gives typed errors, never a
// crashed process, and loses nothing that was saved.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, renameSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointManager, CkptError, fromTypedArray, type StateTree } from '@ckpt/core';
import { faultsUnavailable, type SmallDisk, smallDisk } from '@ckpt/testkit/faults';
import { afterEach, describe, expect, it } from 'vitest';
import { safetensors } from '../src/index.js';

const unavailable = faultsUnavailable();
const deniedChild = fileURLToPath(new URL('./support/denied-child.mjs', import.meta.url));
const state = (n: number, fill: number): StateTree => ({ w: fromTypedArray(new Float32Array(n).fill(fill)) });
const open = (directory: string, options: { readOnly?: boolean } = {}) =>
  CheckpointManager.open({ directory, experiment: 'faults', storage: safetensors, warn: () => {}, ...options });

async function refusal(work: () => Promise<unknown>): Promise<CkptError> {
  const error = await work().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected a typed error').toBeInstanceOf(CkptError);
  return error as CkptError;
}

describe.skipIf(unavailable)('a folder turned read-only', () => {
  let disk: SmallDisk | undefined;
  afterEach(() => disk?.close());

  it('refuses writes typed, still reads, and saves again once writable', async () => {
    disk = smallDisk(4 << 20);
    const writer = await open(disk.path);
    const first = await writer.save({ state: state(1024, 1), step: 1 });
    await writer.close(); // a mount with files open for writing cannot turn read-only
    const file = join(disk.path, 'faults', first.record?.file as string);
    const before = readFileSync(file);

    disk.readOnly(true);
    const opening = await refusal(() => open(disk?.path as string));
    expect(opening.message).toContain(disk.path);
    const reader = await open(disk.path, { readOnly: true });
    expect((await reader.list()).map((r) => r.step)).toEqual([1]);
    expect((await reader.verify('all')).map((r) => r.status)).toEqual(['ok']);
    const save = await refusal(() => reader.save({ state: state(1024, 2), step: 2 }));
    expect(save.code).toMatch(/^CKPT_/);
    await reader.close();

    disk.readOnly(false);
    const again = await open(disk.path);
    await again.save({ state: state(1024, 2), step: 2 });
    expect((await again.list()).map((r) => r.step)).toEqual([1, 2]);
    expect(readFileSync(file).equals(before)).toBe(true);
    await again.close();
  });
});

describe.skipIf(unavailable)('a process denied permission', () => {
  it('gets typed errors for what it may not do, and reads what it may', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ckpt-denied-'));
    chmodSync(root, 0o755);
    const manager = await open(root);
    await manager.save({ state: state(256, 1), step: 1 });
    await manager.close();
    // Owned by someone else and not writable by others: a process without root's override may only read.
    const nobody = 65534;
    for (const path of [root, join(root, 'faults')]) chownSync(path, nobody, nobody);
    const run = spawnSync(
      'setpriv',
      ['--bounding-set', '-dac_override,-dac_read_search,-fowner', '--', process.execPath, deniedChild, root, 'faults'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout.trim().split('\n').at(-1) as string);
    expect(report.open.code).toBe('CKPT_PERMISSION_DENIED');
    expect(report.open.message).toContain(root);
    expect(report.list.ok).toHaveLength(1);
    expect(report.load.ok).toEqual(['w']);
    expect(report.verify.ok).toEqual(['ok']);
    expect(report.save.code).toMatch(/^CKPT_/);
    rmSync(root, { recursive: true, force: true });
  });
});

describe('a checkpoint truncated while its tensors are mapped', () => {
  it('reads zeros instead of crashing, and verification and a new load report it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ckpt-truncated-'));
    const manager = await open(root);
    const { record } = await manager.save({ state: state(1 << 20, 7), step: 1 });
    const loaded = await manager.load('latest'); // views of the mapped file
    truncateSync(join(root, 'faults', record?.file as string), 4096);
    const data = (loaded.state.w as { data: Uint8Array }).data;
    // Touching every page past the new end would kill the process with SIGBUS; here it reads zeros.
    expect(data.subarray(4096).every((byte) => byte === 0)).toBe(true);
    expect(new Float32Array(data.buffer, data.byteOffset, 1)[0]).toBe(7); // the part still in the file is intact
    expect((await manager.verify('all')).map((r) => r.status)).toEqual(['corrupted']);
    await refusal(() => manager.load('latest'));
    await manager.close();
    rmSync(root, { recursive: true, force: true });
  });
});

describe('a checkpoint replaced while its tensors are mapped', () => {
  it('keeps the mapped values, and verification reports the file no longer matches its record', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ckpt-replaced-'));
    const manager = await open(root);
    const { record } = await manager.save({ state: state(4096, 7), step: 1 });
    const loaded = await manager.load('latest'); // views of the mapped file
    const path = join(root, 'faults', record?.file as string);
    // Someone writes another checkpoint and renames it over this one.
    const other = join(root, 'other.safetensors');
    await safetensors.save(other, state(4096, 9));
    renameSync(other, path);
    const { data } = loaded.state.w as { data: Uint8Array };
    expect(new Float32Array(data.buffer, data.byteOffset, 4096).every((v) => v === 7)).toBe(true);
    expect((await manager.verify('all')).map((r) => r.status)).toEqual(['corrupted']);
    await manager.close();
    rmSync(root, { recursive: true, force: true });
  });
});

describe('the experiment folder deleted under a running manager', () => {
  it('gives typed errors, and never crashes', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ckpt-deleted-'));
    const manager = await open(root);
    await manager.save({ state: state(256, 1), step: 1 });
    rmSync(join(root, 'faults'), { recursive: true, force: true });
    const outcome = (work: Promise<unknown>) =>
      work.then(
        (value) => value,
        (e: unknown) => (e instanceof CkptError ? e.code : `untyped ${String(e)}`),
      );
    // Its index went with the folder: the manager sees an empty experiment.
    expect(await outcome(manager.list())).toEqual([]);
    expect(await outcome(manager.verify('all'))).toEqual([]);
    // Loading and saving fail typed: the manager does not quietly recreate a folder someone removed.
    expect(await outcome(manager.load('latest'))).toBe('CKPT_NOT_FOUND');
    expect(await outcome(manager.save({ state: state(256, 2), step: 2 }))).toBe('CKPT_NOT_FOUND');
    await manager.close().catch((e: unknown) => expect(e).toBeInstanceOf(CkptError));
    rmSync(root, { recursive: true, force: true });
  });
});
