import { appendFileSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IndexStore } from '../src/manager/index-store.js';
import type { StoredRecord } from '../src/manager/record.js';
import { scratch, uniqueName } from './support/helpers.js';

const root = scratch('ckpt-index-');

const options = { experiment: 'e', model: 'm', fsync: false, lockTimeoutMs: 1000 };

/** A store for a new index file in the scratch folder. */
function store(): IndexStore {
  return new IndexStore(root, `${uniqueName('index')}.json`, options);
}

/** Another store on the same files, with nothing cached: what a second process sees. */
function fresh(s: IndexStore): IndexStore {
  return new IndexStore(root, basename(s.path), options);
}

function record(n: number): StoredRecord {
  return {
    id: `r${n}`,
    sequence: n,
    experiment: 'e',
    model: 'm',
    epoch: n,
    step: null,
    timestamp: new Date(0).toISOString(),
    file: `r${n}.bin`,
    format: 'x',
    size: n,
    sha256: 'ab'.repeat(32),
    metrics: { loss: 1 / n },
    tags: [],
    isBest: false,
    isLatest: false,
    protected: false,
    status: 'ok',
  };
}

describe('the index snapshot', () => {
  it('writes one line of settings and one line per record, and reads back what it wrote', async () => {
    const s = store();
    await s.update((index) => {
      for (let n = 1; n <= 3; n++) index.checkpoints.push(record(n));
      index.checkpoints[1] = { ...record(2), metrics: { loss: Number.NaN, acc: Number.POSITIVE_INFINITY } };
    });
    await s.compact();
    const lines = readFileSync(s.path, 'utf8').split('\n');
    expect(lines).toHaveLength(3 + 3); // settings, three records, the closing bracket, and the final newline
    expect(lines[0]).toMatch(/^\{"version":\d+,.*"checkpoints":\[$/);
    expect(lines.slice(1, 4).map((line) => JSON.parse(line.replace(/,$/, '')).id)).toEqual(['r1', 'r2', 'r3']);
    const index = await fresh(s).read();
    expect(index.checkpoints.map((r) => r.id)).toEqual(['r1', 'r2', 'r3']);
    expect(index.checkpoints[1]?.metrics).toEqual({ loss: Number.NaN, acc: Number.POSITIVE_INFINITY });
    expect(index.checkpoints[2]).toEqual(record(3));
  });

  it('writes an empty experiment as valid JSON', async () => {
    const s = store();
    await s.update((index) => void index.checkpoints.push(record(1)));
    await s.update((index) => {
      index.checkpoints = [];
    });
    await s.compact();
    expect(JSON.parse(readFileSync(s.path, 'utf8')).checkpoints).toEqual([]);
    expect((await fresh(s).read()).checkpoints).toEqual([]);
  });
});

describe("a sharded checkpoint's record", () => {
  const shard = (file: string) => ({ file, size: 4, sha256: 'cd'.repeat(32) });
  const sharded = (id: string, files: unknown, extra: Record<string, unknown> = {}) => ({
    ...record(1),
    id,
    file: `${id}/model.safetensors.index.json`,
    files,
    ...extra,
  });

  it('keeps a set whose files are all in its folder, and refuses one that reaches out of it', async () => {
    const s = store();
    const good = sharded('good', [
      shard('good/model-00001-of-00001.safetensors'),
      shard('good/model.safetensors.index.json'),
    ]);
    const bad = [
      sharded('outside', [shard('elsewhere/x.safetensors'), shard('outside/model.safetensors.index.json')]),
      sharded('nested', [shard('nested/deeper/x.safetensors'), shard('nested/model.safetensors.index.json')]),
      sharded('empty', []),
      sharded('unlisted', [shard('unlisted/x.safetensors')]),
      { ...sharded('flat', [shard('model.safetensors.index.json')]), file: 'model.safetensors.index.json' },
      sharded('sizeless', [{ file: 'sizeless/model.safetensors.index.json', sha256: 'ab' }]),
      sharded('backup', [shard('backup/model.safetensors.index.json')], {
        backup: { file: 'backups/model.safetensors.index.json', sha256: 'ab', at: '' },
      }),
    ];
    writeFileSync(s.path, JSON.stringify({ version: 1, checkpoints: [good, ...bad] }));
    const index = await s.read();
    expect(index.checkpoints.map((r) => r.id)).toEqual(['good']);
    expect(index.checkpoints[0]?.files).toEqual(good.files);
    expect(index.rejected?.map((r) => r.reason)).toEqual([
      expect.stringMatching(/shard "elsewhere\/x.safetensors" is not in the checkpoint's folder/),
      expect.stringMatching(/shard "nested\/deeper\/x.safetensors" is not in the checkpoint's folder/),
      expect.stringMatching(/`files` is not a list of 1 to/),
      expect.stringMatching(/does not list the checkpoint's own file/),
      expect.stringMatching(/is not <folder>\/<name>/),
      expect.stringMatching(/has no size/),
      expect.stringMatching(/does not mirror/),
    ]);
  });
});

describe('the index journal', () => {
  it('appends one line per change instead of rewriting the snapshot, and reads back the same index', async () => {
    const s = store();
    await s.update((index) => void index.checkpoints.push(record(1))); // first change: snapshot + empty journal
    const snapshot = statSync(s.path);
    for (let n = 2; n <= 5; n++) await s.update((index) => void index.checkpoints.push(record(n)));
    await s.update((index) => {
      index.checkpoints = index.checkpoints.filter((r) => r.id !== 'r3');
      index.deleting.push('r3.bin');
    });
    expect(statSync(s.path).mtimeMs).toBe(snapshot.mtimeMs); // not rewritten
    const lines = readFileSync(s.journalPath, 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).op)).toEqual(['put', 'put', 'put', 'put', 'del', 'deleting']);
    const index = await fresh(s).read();
    expect(index.checkpoints.map((r) => r.id)).toEqual(['r1', 'r2', 'r4', 'r5']);
    expect(index.deleting).toEqual(['r3.bin']);
    expect(index.nextSequence).toBe(6);
  });

  it('compaction folds the journal into the snapshot; replaying an old journal over it changes nothing', async () => {
    const s = store();
    for (let n = 1; n <= 4; n++) await s.update((index) => void index.checkpoints.push(record(n)));
    await s.update((index) => {
      index.checkpoints = index.checkpoints.filter((r) => r.id !== 'r2');
    });
    const journal = readFileSync(s.journalPath, 'utf8');
    await s.compact();
    expect(readFileSync(s.journalPath, 'utf8')).toBe('');
    const compacted = await fresh(s).read();
    expect(compacted.checkpoints.map((r) => r.id)).toEqual(['r1', 'r3', 'r4']);
    // A crash between writing the snapshot and replacing the journal leaves both: same index.
    writeFileSync(s.journalPath, journal);
    expect((await fresh(s).read()).checkpoints.map((r) => r.id)).toEqual(['r1', 'r3', 'r4']);
  });

  it('ignores a torn last line and repairs it on the next change', async () => {
    const s = store();
    await s.update((index) => void index.checkpoints.push(record(1)));
    await s.update((index) => void index.checkpoints.push(record(2)));
    appendFileSync(s.journalPath, '{"op":"put","record":{"id":"r9"'); // a crash mid-append
    const reader = fresh(s);
    expect((await reader.read()).checkpoints.map((r) => r.id)).toEqual(['r1', 'r2']);
    await reader.update((index) => void index.checkpoints.push(record(3)));
    expect(readFileSync(s.journalPath, 'utf8')).toBe(''); // repaired by compaction
    expect((await fresh(s).read()).checkpoints.map((r) => r.id)).toEqual(['r1', 'r2', 'r3']);
  });

  it('sets a damaged line in the middle aside, saying where, and keeps the rest', async () => {
    const s = store();
    await s.update((index) => void index.checkpoints.push(record(1)));
    await s.update((index) => void index.checkpoints.push(record(2)));
    writeFileSync(s.journalPath, `garbage\n${readFileSync(s.journalPath, 'utf8')}`);
    const index = await fresh(s).read();
    expect(index.checkpoints.map((r) => r.sequence)).toEqual([1, 2]);
    expect(index.rejected).toEqual([{ where: `${s.journalPath}:1`, reason: 'the line is not JSON', entry: 'garbage' }]);
    // Kept through compaction, so nothing in the folder is lost.
    const again = fresh(s);
    await again.compact();
    expect((await fresh(again).read()).rejected).toHaveLength(1);
  });

  it('compacts by itself when the journal grows past 512 entries or past the snapshot', async () => {
    const s = store();
    await s.update((index) => void index.checkpoints.push(record(1)));
    // One record changed 600 times: the journal would outgrow the snapshot; compacted by 512 entries.
    for (let n = 1; n <= 600; n++) {
      await s.update((index) => {
        index.checkpoints[0] = { ...record(1), step: n };
      });
    }
    expect(readFileSync(s.journalPath, 'utf8').split('\n').length).toBeLessThan(520);
    expect((await fresh(s).read()).checkpoints[0]?.step).toBe(600);
    // Records appended: the journal may hold up to 8 entries a record before a compaction
    // (which rewrites them all), so the cost of compacting per save stays flat.
    const t = store();
    for (let n = 1; n <= 2000; n++) await t.update((index) => void index.checkpoints.push(record(n)));
    const lines = readFileSync(t.journalPath, 'utf8').split('\n').length - 1;
    expect(lines).toBeGreaterThan(512);
    expect(lines).toBeLessThanOrEqual(8 * 2000);
    expect((await fresh(t).read()).checkpoints).toHaveLength(2000);
  });

  it('a failed change leaves the index as it was', async () => {
    const s = store();
    await s.update((index) => void index.checkpoints.push(record(1)));
    await expect(
      s.update((index) => {
        index.checkpoints.push(record(2));
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect((await s.read()).checkpoints.map((r) => r.id)).toEqual(['r1']);
  });

  it('keeps the index read while the files are unchanged, and sees every change another process makes', async () => {
    const s = store();
    const other = fresh(s);
    await s.update((index) => void index.checkpoints.push(record(1)));
    const first = await other.read();
    expect(await other.read()).toBe(first); // cached: nothing changed on disk
    await s.update((index) => void index.checkpoints.push(record(2))); // a journal append
    expect((await other.read()).checkpoints.map((r) => r.id)).toEqual(['r1', 'r2']);
    await s.compact(); // the snapshot replaced
    const compacted = await other.read();
    expect(compacted.checkpoints.map((r) => r.id)).toEqual(['r1', 'r2']);
    expect(await other.read()).toBe(compacted);
    // An index written by another tool, with no journal beside it: cached too, and re-read once replaced.
    const plain = store();
    const text = JSON.stringify({ ...(await s.read()), checkpoints: [record(7)] });
    writeFileSync(plain.path, text);
    const seen = await plain.read();
    expect(seen.checkpoints.map((r) => r.id)).toEqual(['r7']);
    expect(await plain.read()).toBe(seen);
    writeFileSync(`${plain.path}.new`, text.replace('"r7"', '"r8"'));
    renameSync(`${plain.path}.new`, plain.path);
    expect((await plain.read()).checkpoints.map((r) => r.id)).toEqual(['r8']);
  });
});
