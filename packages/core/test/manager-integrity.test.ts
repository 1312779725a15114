import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IntegrityError, NotFoundError, StorageRegistry, type Tensor, tensorsEqual } from '../src/index.js';
import { openManager, scratch, sha256OfFile, testBackend, uniqueName, weights } from './support/helpers.js';

const root = scratch();

function flipByte(path: string, offset: number): void {
  const bytes = readFileSync(path);
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from([(bytes[offset] as number) ^ 0xff]), 0, 1, offset);
  closeSync(fd);
}

describe('integrity', () => {
  it('verify and load catch a flipped byte; list and summary report it', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    const first = (await manager.save({ state: { w: weights(1000, 1) }, epoch: 0 })).record;
    const second = (await manager.save({ state: { w: weights(1000, 2) }, epoch: 1 })).record;
    if (!first || !second) throw new Error('not saved');
    expect((await manager.verify()).map((v) => v.status)).toEqual(['ok', 'ok']);

    flipByte(second.path, second.size - 10); // inside the tensor bytes
    const [result] = await manager.verify(second.id);
    expect(result).toMatchObject({ id: second.id, status: 'corrupted', expected: second.sha256 });
    expect(result?.actual).toBe(sha256OfFile(second.path));
    const error = await manager.load(second.id, { verifyIntegrity: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    expect(error).toMatchObject({ code: 'CKPT_INTEGRITY', expected: second.sha256, path: second.path });

    expect((await manager.list({ status: 'corrupted' })).map((r) => r.id)).toEqual([second.id]);
    const summary = await manager.summary();
    expect(summary.problems).toEqual([{ id: second.id, status: 'corrupted' }]);
    expect(summary.byStatus).toEqual({ ok: 1, missing: 0, corrupted: 1 });
  });

  it('verifyOnLoad checks every load', async () => {
    const { manager } = await openManager(root, {
      experiment: uniqueName(),
      integrity: { fsync: false, verifyOnLoad: true },
    });
    const { record } = await manager.save({ state: { w: weights(100, 1) } });
    flipByte(record?.path as string, (record?.size as number) - 5);
    await expect(manager.load()).rejects.toBeInstanceOf(IntegrityError);
    // Asking explicitly not to verify still reads it.
    await expect(manager.load('latest', { verifyIntegrity: false })).resolves.toBeDefined();
  });

  it('marks missing files on open; loading one says so', async () => {
    const experiment = uniqueName();
    const { manager } = await openManager(root, { experiment });
    const { record } = await manager.save({ state: { w: weights(8, 0) }, epoch: 0 });
    await manager.save({ state: { w: weights(8, 1) }, epoch: 1 });
    rmSync(record?.path as string);
    const reopened = await openManager(root, { experiment });
    expect(reopened.manager.recovery.missing).toEqual([record?.id]);
    expect(reopened.warnings.join('\n')).toMatch(/missing/);
    expect((await reopened.manager.get(record?.id as string))?.status).toBe('missing');
    await expect(reopened.manager.load(record?.id as string)).rejects.toBeInstanceOf(NotFoundError);
    expect((await reopened.manager.summary()).byStatus.missing).toBe(1);
  });

  it('resume skips corrupted and missing checkpoints with a warning and loads the newest valid one', async () => {
    const { manager, warnings } = await openManager(root, { experiment: uniqueName() });
    const records = [];
    for (let epoch = 0; epoch < 4; epoch++)
      records.push((await manager.save({ state: { w: weights(50, epoch), epoch }, epoch })).record);
    flipByte(records[3]?.path as string, 40);
    rmSync(records[2]?.path as string);
    const resumed = await manager.resume();
    expect(resumed?.record.epoch).toBe(1);
    expect(resumed?.state.epoch).toBe(1);
    expect(warnings.filter((w) => w.startsWith('resume: skipping'))).toHaveLength(2);
    expect((await manager.list()).map((r) => r.status)).toEqual(['ok', 'ok', 'missing', 'corrupted']);
  });

  it('resume on an empty experiment is null', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    expect(await manager.resume()).toBeNull();
  });
});

describe('backups', () => {
  it('backs up the best automatically, verified, and restores a corrupted primary', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName(), backup: { when: 'best' } });
    await manager.save({ state: { w: weights(100, 0) }, epoch: 0, metrics: { val_loss: 0.5 } });
    await manager.save({ state: { w: weights(100, 1) }, epoch: 1, metrics: { val_loss: 0.9 } });
    const best = (await manager.save({ state: { w: weights(100, 2) }, epoch: 2, metrics: { val_loss: 0.1 } })).record;
    const records = await manager.list();
    expect(records.map((r) => Boolean(r.backup))).toEqual([true, false, true]);
    const backupPath = join(manager.folder, best?.backup?.file as string);
    expect(best?.backup?.file).toBe(`backups/${best?.file}`);
    expect(sha256OfFile(backupPath)).toBe(best?.sha256);

    flipByte(best?.path as string, 30);
    expect((await manager.verify('best'))[0]?.status).toBe('corrupted');
    const restored = await manager.restore('best');
    expect(restored.status).toBe('ok');
    expect((await manager.verify('best'))[0]?.status).toBe('ok');
  });

  it('refuses to back up a corrupted checkpoint, and to restore from a corrupted backup', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    const { record } = await manager.save({ state: { w: weights(100, 0) } });
    const id = record?.id as string;
    flipByte(record?.path as string, 30);
    await expect(manager.backup(id)).rejects.toBeInstanceOf(IntegrityError);
    expect(existsSync(join(manager.folder, 'backups', record?.file as string))).toBe(false);
    flipByte(record?.path as string, 30); // mend it
    const backedUp = await manager.backup(id);
    flipByte(join(manager.folder, backedUp.backup?.file as string), 31);
    await expect(manager.restore(id)).rejects.toBeInstanceOf(IntegrityError);
    await expect(manager.restore(id)).rejects.toThrow(/does not match its recorded SHA-256/);
  });
});

describe('export', () => {
  it('copies with a manifest of new digests', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName() });
    const { record } = await manager.save({
      state: { w: weights(10, 0) },
      epoch: 3,
      metrics: { val_loss: 0.2 },
      config: { lr: 0.1 },
    });
    const out = join(root, uniqueName('export'));
    const result = await manager.export('latest', out);
    expect(result.files).toHaveLength(1);
    const [file] = result.files;
    expect(file?.sha256).toBe(sha256OfFile(file?.path as string));
    const manifest = JSON.parse(readFileSync(result.manifest, 'utf8'));
    expect(manifest.files).toEqual([{ file: record?.file, size: record?.size, sha256: record?.sha256 }]);
    expect(manifest.source).toMatchObject({
      id: record?.id,
      epoch: 3,
      metrics: { val_loss: 0.2 },
      config: { lr: 0.1 },
    });
    expect(manifest.source.path).toBeUndefined();
  });

  it('converts to another registered format', async () => {
    const other = testBackend({ name: 'other', extension: '.other' });
    const registry = new StorageRegistry([testBackend(), other]);
    const { manager } = await openManager(root, { experiment: uniqueName(), storage: 'ckpt-test', registry });
    const state = { w: weights(10, 5) };
    const { record } = await manager.save({ state });
    const out = join(root, uniqueName('convert'));
    const result = await manager.export(record?.id as string, out, { format: 'other' });
    expect(result.format).toBe('other');
    expect(result.files[0]?.path).toBe(join(out, `${record?.id}.other`));
    const loaded = await other.load(result.files[0]?.path as string);
    expect(tensorsEqual(loaded.state.w as Tensor, state.w)).toBe(true);
    await expect(manager.export(record?.id as string, out, { format: 'nope' })).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('compression', () => {
  it('gzips files, records the compressed digest, and loads them back', async () => {
    const { manager } = await openManager(root, { experiment: uniqueName(), compression: 'gzip' });
    const state = { w: { dtype: 'F32' as const, shape: [10000], data: new Uint8Array(40000) } };
    const { record } = await manager.save({ state, epoch: 0 });
    expect(record?.file.endsWith('.ckpt-test.gz')).toBe(true);
    expect(record?.compression).toBe('gzip');
    expect(record?.size).toBeLessThan(5000);
    expect(record?.sha256).toBe(sha256OfFile(record?.path as string));
    expect((await manager.verify())[0]?.status).toBe('ok');
    const loaded = await manager.load();
    expect(tensorsEqual(loaded.state.w as Tensor, state.w)).toBe(true);
    expect(readFileSync(record?.path as string).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
  });
});
