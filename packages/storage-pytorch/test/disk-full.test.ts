// A full disk under the manager (see docs/formats-and-safety.md, "Faults"):
// the experiment lives on a tmpfs of a few megabytes that the test fills.
// A save, a backup, an export, a conversion and a journal append each fail
// with a typed error naming the file on that disk, leave nothing under a
// final name, keep every earlier checkpoint and record intact, and succeed
// once space is freed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CheckpointManager,
  type CheckpointRecord,
  CkptError,
  fromTypedArray,
  type StateTree,
  StorageRegistry,
} from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';
import { faultsUnavailable, type SmallDisk, smallDisk } from '@ckpt/testkit/faults';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pytorch } from '../src/index.js';

const unavailable = faultsUnavailable();
const MiB = 1 << 20;

/** A state of about `bytes` bytes. */
const state = (bytes: number, fill: number): StateTree => ({
  w: fromTypedArray(new Float32Array(bytes / 4).fill(fill)),
});

describe.skipIf(unavailable)('a full disk under the manager', () => {
  let disk: SmallDisk;
  let manager: CheckpointManager;
  let earlier: CheckpointRecord[];
  let folder: string;
  const files = new Map<string, Buffer>();

  const open = () =>
    CheckpointManager.open({
      directory: disk.path,
      experiment: 'full',
      storage: pytorch,
      registry: new StorageRegistry([pytorch, safetensors]),
      warn: () => {},
    });

  beforeEach(async () => {
    disk = smallDisk(8 * MiB);
    manager = await open();
    earlier = [];
    for (let step = 1; step <= 2; step++) earlier.push(await save(state(64 * 1024, step), step));
    earlier.push(await save(state(MiB, 3), 3));
    folder = join(disk.path, 'full');
    files.clear();
    for (const record of earlier) files.set(record.file, readFileSync(join(folder, record.file)));
  });

  /** Saves, returning the record (the manager saves every call here: no save policy). */
  async function save(tree: StateTree, step: number): Promise<CheckpointRecord> {
    const { record } = await manager.save({ state: tree, step });
    if (!record) throw new Error('the save was skipped');
    return record;
  }

  afterEach(async () => {
    await manager?.close().catch(() => {});
    disk?.close();
  });

  /** Runs `operation` on the filled disk and returns its error, which must be typed and name a path on the disk. */
  async function failsForSpace(operation: () => Promise<unknown>, leave = 64 * 1024): Promise<CkptError> {
    disk.fill(leave);
    const error = await operation().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, 'the operation should fail on a full disk').toBeInstanceOf(CkptError);
    const typed = error as CkptError;
    expect(typed.code).toBe('CKPT_NO_SPACE');
    expect(typed.message).toMatch(/no space left/);
    expect(typed.message).toContain(disk.path);
    return typed;
  }

  /** Every earlier checkpoint is listed, unchanged and verified; no temporary is left behind. */
  async function expectEarlierIntact(): Promise<void> {
    for (const [file, bytes] of files) expect(readFileSync(join(folder, file)).equals(bytes), file).toBe(true);
    const listed = await manager.list();
    for (const record of earlier) expect(listed.map((r) => r.id)).toContain(record.id);
    for (const result of await manager.verify('all')) expect(result.status, result.id).toBe('ok');
    expect(leftovers(disk.path)).toEqual([]);
  }

  it('a save fails, leaves no file under its name, and the next one succeeds once space is freed', async () => {
    const before = readdirSync(folder).sort();
    await failsForSpace(() => manager.save({ state: state(2 * MiB, 9), step: 9 }));
    expect(readdirSync(folder).sort()).toEqual(before);
    await expectEarlierIntact();
    disk.free();
    const record = await save(state(2 * MiB, 9), 9);
    expect((await manager.load(record.id)).state).toBeDefined();
  });

  it('a backup fails without a partial copy, and succeeds once space is freed', async () => {
    const big = earlier[2] as CheckpointRecord;
    await failsForSpace(() => manager.backup(big.id));
    expect(existsSync(join(folder, 'backups', big.file))).toBe(false);
    expect((await manager.get(big.id))?.backup).toBeUndefined();
    await expectEarlierIntact();
    disk.free();
    const { backup } = await manager.backup(big.id);
    expect(backup?.file).toBe(`backups/${big.file}`);
    expect(readFileSync(join(folder, 'backups', big.file)).equals(files.get(big.file) as Buffer)).toBe(true);
  });

  it('an export fails without a partial file, and succeeds once space is freed', async () => {
    const big = earlier[2] as CheckpointRecord;
    const destination = join(disk.path, 'exports');
    await failsForSpace(() => manager.export(big.id, destination));
    expect(existsSync(join(destination, big.file))).toBe(false);
    await expectEarlierIntact();
    disk.free();
    const result = await manager.export(big.id, destination);
    expect(result.files.length).toBeGreaterThan(0);
  });

  it('a conversion to safetensors fails without a partial file, and succeeds once space is freed', async () => {
    const big = earlier[2] as CheckpointRecord;
    const destination = join(disk.path, 'converted');
    await failsForSpace(() => manager.export(big.id, destination, { format: 'safetensors' }));
    expect(existsSync(join(destination, `${big.id}.safetensors`))).toBe(false);
    await expectEarlierIntact();
    disk.free();
    const result = await manager.export(big.id, destination, { format: 'safetensors' });
    expect((await safetensors.load(result.files[0]?.path as string)).state).toBeDefined();
  });

  it('a journal append (a tag) fails and changes nothing, and succeeds once space is freed', async () => {
    // A fresh journal: closing folds it into the snapshot, so the append needs a new block.
    await manager.close();
    manager = await open();
    await failsForSpace(() => manager.tag(earlier[0]?.id as string, 'kept'), 0);
    expect((await manager.get(earlier[0]?.id as string))?.tags ?? []).not.toContain('kept');
    await expectEarlierIntact();
    disk.free();
    await manager.tag(earlier[0]?.id as string, 'kept');
    await manager.close();
    manager = await open();
    expect((await manager.get(earlier[0]?.id as string))?.tags).toContain('kept');
  });
});

/** Temporaries and staging folders anywhere under `root`: none may outlive a failed operation. */
function leftovers(root: string): string[] {
  const found: string[] = [];
  const stack = [root];
  for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.name.endsWith('.ckpt-tmp') || entry.name.startsWith('.ckpt-staging')) found.push(path);
      if (entry.isDirectory()) stack.push(path);
    }
  }
  return found;
}
