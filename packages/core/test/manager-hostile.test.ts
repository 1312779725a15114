import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isCkptError } from '../src/index.js';
import { openManager, scratch, uniqueName, weights } from './support/helpers.js';

// Experiment folders from someone else: an index whose names leave the folder, links to the outside,
// malformed entries. Nothing outside the folder may be read, written or deleted, and the rest stays usable.
const root = scratch('ckpt-hostile-');

function indexOf(folder: string) {
  return JSON.parse(readFileSync(join(folder, 'checkpoint_metadata.json'), 'utf8'));
}

function writeIndex(folder: string, index: unknown): void {
  writeFileSync(join(folder, 'checkpoint_metadata.json'), JSON.stringify(index));
}

/** An experiment with three saved checkpoints, closed; returns its folder. */
async function experimentWithThree(): Promise<string> {
  const { manager } = await openManager(root, { experiment: uniqueName('hostile') });
  for (let epoch = 1; epoch <= 3; epoch++) await manager.save({ state: { w: weights(8, epoch) }, epoch });
  await manager.close();
  return manager.folder;
}

/** A folder outside the experiment holding a file that must survive. */
function victim(): { dir: string; file: string } {
  const dir = join(scratch('ckpt-victim-'), 'outside');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'precious.txt');
  writeFileSync(file, 'do not touch');
  return { dir, file };
}

describe('names from the index are checked before they reach a path', () => {
  it.each([
    ['an id that climbs out', { id: '../../victim/pwned' }],
    ['an id with a separator', { id: 'a/b' }],
    ['an empty file', { file: '' }],
    ['a file that is "."', { file: '.' }],
    ['a file with a NUL', { file: 'x\u0000.ckpt-test' }],
    ['an absolute file', { file: '/etc/passwd' }],
    ['a file that climbs out', { file: '../elsewhere.ckpt-test' }],
  ])('%s: the entry is refused and named, the rest stays usable', async (_, change) => {
    const folder = await experimentWithThree();
    const index = indexOf(folder);
    Object.assign(index.checkpoints[2], change);
    writeIndex(folder, index);
    const experiment = folder.split('/').pop() as string;
    const { manager, warnings } = await openManager(root, { experiment });
    expect(manager.recovery.rejected).toHaveLength(1);
    expect(warnings.join('\n')).toMatch(/1 index entry was refused/);
    expect((await manager.list()).map((r) => r.epoch)).toEqual([1, 2]);
    expect((await manager.verify()).map((r) => r.status)).toEqual(['ok', 'ok']);
    const out = join(scratch('ckpt-out-'), 'export');
    await manager.export('latest', out);
    expect(readdirSync(out).sort()).toEqual(
      [(await manager.list())[1]?.id].flatMap((id) => [`${id}.ckpt-test`, `${id}.manifest.json`]).sort(),
    );
    await manager.close();
    // Kept verbatim in the index, never lost.
    expect(indexOf(folder).rejected).toHaveLength(1);
  });

  it('a journal entry with a bad name is set aside; the lines after it still apply', async () => {
    const folder = await experimentWithThree();
    const good = indexOf(folder).checkpoints[0];
    const journal = join(folder, 'checkpoint_metadata.json.journal');
    writeFileSync(
      journal,
      `${JSON.stringify({ op: 'deleting', add: ['../../victim/precious.txt'] })}\n${JSON.stringify({ op: 'put', record: { ...good, tags: ['after'] } })}\n`,
    );
    const { manager } = await openManager(root, { experiment: folder.split('/').pop() as string, readOnly: true });
    expect(manager.recovery.rejected).toHaveLength(1);
    expect((await manager.list()).find((r) => r.id === good.id)?.tags).toEqual(['after']);
    await manager.close();
  });
});

describe('links never lead a read, a write or a delete outside the folder', () => {
  it('unfinished deletions through a linked folder leave the outside alone, even for a writer', async () => {
    const folder = await experimentWithThree();
    const { dir, file } = victim();
    symlinkSync(dir, join(folder, 'linked'));
    const index = indexOf(folder);
    index.deleting = ['linked/precious.txt'];
    writeIndex(folder, index);
    const { manager } = await openManager(root, { experiment: folder.split('/').pop() as string });
    expect(existsSync(file)).toBe(true);
    expect(manager.recovery.rejected.join('\n')).toMatch(/leads outside the experiment folder/);
    await manager.close();
  });

  it('a record whose file is a link to a file outside is refused by verify, load, export and backup', async () => {
    const folder = await experimentWithThree();
    const { file } = victim();
    const index = indexOf(folder);
    const target = index.checkpoints[2].file;
    const { rmSync } = await import('node:fs');
    rmSync(join(folder, target));
    symlinkSync(file, join(folder, target));
    const { manager } = await openManager(root, { experiment: folder.split('/').pop() as string });
    const verified = await manager.verify();
    expect(verified[2]).toMatchObject({ status: 'corrupted', problem: expect.stringMatching(/leads outside/) });
    for (const attempt of [
      () => manager.load({ id: index.checkpoints[2].id }, { verifyIntegrity: false }),
      () => manager.export({ id: index.checkpoints[2].id }, join(scratch('ckpt-out-'), 'x')),
      () => manager.backup({ id: index.checkpoints[2].id }),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(isCkptError(error), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/outside|corrupted/);
    }
    expect(readFileSync(file, 'utf8')).toBe('do not touch');
    await manager.close();
  });

  it('a record reached through a linked folder is deleted nowhere: the outside file stays', async () => {
    const folder = await experimentWithThree();
    const { dir, file } = victim();
    symlinkSync(dir, join(folder, 'linked'));
    const index = indexOf(folder);
    index.checkpoints[0].file = 'linked/precious.txt';
    writeIndex(folder, index);
    const { manager, warnings } = await openManager(root, { experiment: folder.split('/').pop() as string });
    await manager.delete({ id: index.checkpoints[0].id });
    expect(existsSync(file)).toBe(true);
    expect(warnings.join('\n')).toMatch(/leads outside/);
    await manager.close();
  });

  it('a staging folder that is a link is never emptied', async () => {
    const folder = await experimentWithThree();
    const { dir, file } = victim();
    mkdirSync(join(dir, 'host-1-1+00000000'));
    writeFileSync(join(dir, 'host-1-1+00000000', 'x'), 'x');
    symlinkSync(dir, join(folder, '.ckpt-staging'));
    const { manager } = await openManager(root, { experiment: folder.split('/').pop() as string });
    await manager.close();
    expect(existsSync(file)).toBe(true);
    expect(existsSync(join(dir, 'host-1-1+00000000', 'x'))).toBe(true);
  });
});

describe('opening read-only changes nothing on disk', () => {
  it('reports what recovery would remove, removes nothing, and refuses changes', async () => {
    const folder = await experimentWithThree();
    writeFileSync(join(folder, '.abc.ckpt-tmp'), 'partial');
    const hourAgo = new Date(Date.now() - 3600_000);
    utimesSync(join(folder, '.abc.ckpt-tmp'), hourAgo, hourAgo); // left by a crash, not being written
    const index = indexOf(folder);
    writeFileSync(join(folder, 'doomed.ckpt-test'), 'x');
    index.deleting = ['doomed.ckpt-test'];
    writeIndex(folder, index);
    const before = readFileSync(join(folder, 'checkpoint_metadata.json'), 'utf8');
    const { manager, warnings } = await openManager(root, {
      experiment: folder.split('/').pop() as string,
      readOnly: true,
    });
    expect(manager.recovery.removed.sort()).toEqual(['.abc.ckpt-tmp', 'doomed.ckpt-test']);
    expect(warnings.join('\n')).toMatch(/read-only; a writer would remove 2/);
    expect((await manager.list()).length).toBe(3);
    await expect(manager.save({ state: { w: weights(2, 0) }, epoch: 9 })).rejects.toMatchObject({
      code: 'CKPT_INVALID_ARGUMENT',
    });
    await expect(manager.delete({ epoch: 1 })).rejects.toThrow(/read-only/);
    await manager.close();
    expect(existsSync(join(folder, '.abc.ckpt-tmp'))).toBe(true);
    expect(existsSync(join(folder, 'doomed.ckpt-test'))).toBe(true);
    expect(readFileSync(join(folder, 'checkpoint_metadata.json'), 'utf8')).toBe(before);
  });
});

describe('mutated indexes and journals', () => {
  it('500 random mutations: each opens (bad entries set aside) or is refused with a typed error', async () => {
    const folder = await experimentWithThree();
    const experiment = folder.split('/').pop() as string;
    const index = readFileSync(join(folder, 'checkpoint_metadata.json'));
    const records = indexOf(folder).checkpoints as Array<Record<string, unknown>>;
    const journal = Buffer.from(
      `${records.map((record) => JSON.stringify({ op: 'put', record: { ...record, tags: ['j'] } })).join('\n')}\n`,
    );
    let seed = 20261201;
    const random = () => {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      return seed / 2 ** 32;
    };
    const mutate = (bytes: Buffer): Buffer => {
      const out = Buffer.from(bytes);
      for (let r = 0; r < 1 + Math.floor(random() * 4); r++) {
        const at = Math.floor(random() * out.length);
        out[at] = [0x22, 0x2f, 0x2e, 0x00, 0x7b, 0x5b, 0x5d, 0x7d, 0x2c, 0x3a][Math.floor(random() * 10)] as number;
      }
      return out;
    };
    let opened = 0;
    let refused = 0;
    for (let i = 0; i < 500; i++) {
      writeFileSync(join(folder, 'checkpoint_metadata.json'), i % 2 === 0 ? mutate(index) : index);
      writeFileSync(join(folder, 'checkpoint_metadata.json.journal'), i % 2 === 1 ? mutate(journal) : journal);
      try {
        const { manager } = await openManager(root, { experiment, readOnly: true });
        await manager.list();
        await manager.summary();
        await manager.close();
        opened++;
      } catch (error) {
        expect(isCkptError(error), String(error)).toBe(true);
        refused++;
      }
    }
    expect(opened + refused).toBe(500);
    expect(opened).toBeGreaterThan(100);
  }, 60_000);
});
