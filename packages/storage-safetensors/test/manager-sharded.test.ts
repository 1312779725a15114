import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CheckpointManager,
  type CheckpointManagerOptions,
  fromTypedArray,
  keepLatest,
  type Tensor,
  tensorsEqual,
} from '@ckpt/core';
import { processTableIdentity } from '@ckpt/native';
import { beforeAll, describe, expect, it } from 'vitest';
import { requirePythonModules, runPython, skipPython } from '../../../tools/testing/python.js';
import { safetensors } from '../src/index.js';

// Sharded checkpoints kept by the CheckpointManager: a folder per checkpoint in
// the Hugging Face layout, one record with every file's digest, treated as one unit.
const root = mkdtempSync(join(tmpdir(), 'ckpt-st-sharded-'));
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
// How the manager names this machine in owners: the host name, boot id and pid namespace.
const host = processTableIdentity().replace(/[^A-Za-z0-9.]/g, '_');
let experiments = 0;

/** Eight tensors of 64 KiB each (tensor i filled from i): 4 shards of 128 KiB. */
function state(seed = 0): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (let i = 0; i < 8; i++) {
    const values = new Float32Array(16384).map((_, j) => seed * 1000 + i + j / 16384);
    out[`model.layers.${i}.weight`] = fromTypedArray(values);
  }
  return out;
}

async function open(extra: Partial<CheckpointManagerOptions> = {}) {
  const warnings: string[] = [];
  const manager = await CheckpointManager.open({
    directory: root,
    experiment: `sharded-${++experiments}`,
    storage: safetensors,
    saveOptions: { maxShardSize: 128 * 1024 + 4096 },
    warn: (message) => warnings.push(message),
    ...extra,
  });
  return { manager, warnings };
}

function indexOf(folder: string) {
  return JSON.parse(readFileSync(join(folder, 'checkpoint_metadata.json'), 'utf8'));
}

describe('sharded checkpoints in the manager', () => {
  it('writes each checkpoint as a folder of shards and an index, with every digest in one record', async () => {
    const { manager } = await open();
    const { record } = await manager.save({ state: state(1), step: 10 });
    if (!record?.files) throw new Error('expected a sharded record');
    const set = record.file.split('/')[0] as string;
    expect(record.id).toBe(set);
    expect(readdirSync(join(manager.folder, set)).sort()).toEqual([
      'model-00001-of-00004.safetensors',
      'model-00002-of-00004.safetensors',
      'model-00003-of-00004.safetensors',
      'model-00004-of-00004.safetensors',
      'model.safetensors.index.json',
    ]);
    expect(record.files.map((f) => f.file).at(-1)).toBe(record.file); // the index last
    for (const file of record.files) {
      const path = join(manager.folder, file.file);
      expect(file.sha256).toBe(sha256(path));
      expect(file.size).toBe(readFileSync(path).byteLength);
    }
    expect(record.size).toBe(record.files.reduce((sum, f) => sum + f.size, 0));
    expect(record.sha256).toBe(sha256(record.path));
    const index = JSON.parse(readFileSync(record.path, 'utf8'));
    expect(index.weight_map['model.layers.7.weight']).toBe('model-00004-of-00004.safetensors');
    // Nothing left in staging, and the record survives a reopening as it was.
    await manager.close();
    expect(readdirSync(join(manager.folder, '.ckpt-staging'))).toEqual([]);
    const again = await open({ experiment: manager.experiment });
    expect((await again.manager.list())[0]).toEqual(record);
    const loaded = await again.manager.load();
    for (const [name, t] of Object.entries(state(1))) expect(tensorsEqual(loaded.state[name] as Tensor, t)).toBe(true);
    expect(await again.manager.verify()).toMatchObject([{ status: 'ok', expected: record.sha256 }]);
    await again.manager.close();
  });

  it('a per-save maxShardSize shards one save; without it the same manager writes one file', async () => {
    const { manager } = await open({ saveOptions: {} });
    const { record: single } = await manager.save({ state: state(), step: 1 });
    const { record: sharded } = await manager.save({ state: state(), step: 2, maxShardSize: '300KB' });
    expect(single?.files).toBeUndefined();
    expect(single?.file).toMatch(/\.safetensors$/);
    expect(sharded?.files?.map((f) => f.file.split('/')[1])).toEqual([
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
    await expect(manager.save({ state: state(), step: 3, maxShardSize: '12 parsecs' })).rejects.toMatchObject({
      code: 'CKPT_INVALID_ARGUMENT',
    });
    await manager.close();
    const gzipped = await open({ compression: 'gzip' });
    await expect(gzipped.manager.save({ state: state() })).rejects.toMatchObject({ code: 'CKPT_UNSUPPORTED' });
    await gzipped.manager.close();
  });

  it('verify finds a damaged or missing shard; reopening marks a partial set corrupted and a gone one missing', async () => {
    const { manager } = await open();
    const { record: first } = await manager.save({ state: state(1), step: 1 });
    const { record: second } = await manager.save({ state: state(2), step: 2 });
    if (!first?.files || !second?.files) throw new Error('expected sharded records');
    const shard = join(manager.folder, first.files[1]?.file as string);
    const bytes = readFileSync(shard);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1); // same size: only a digest sees it
    writeFileSync(shard, bytes);
    expect((await manager.verify(first.id))[0]?.status).toBe('corrupted');
    await expect(manager.load(first.id, { verifyIntegrity: true })).rejects.toMatchObject({ code: 'CKPT_INTEGRITY' });
    await manager.close();

    truncateSync(shard, 10);
    rmSync(join(manager.folder, second.id), { recursive: true });
    const reopened = await open({ experiment: manager.experiment });
    // The first was already marked by verify (a report lists what changed); the second is newly missing.
    expect(reopened.manager.recovery).toMatchObject({ corrupted: [], missing: [second.id], orphans: [] });
    expect((await reopened.manager.list()).map((r) => r.status)).toEqual(['corrupted', 'missing']);
    await reopened.manager.close();
  });

  it('reopening marks a set with a shard of the wrong size corrupted', async () => {
    const { manager } = await open();
    const { record } = await manager.save({ state: state(3), step: 1 });
    await manager.close();
    truncateSync(join(manager.folder, record?.files?.[2]?.file as string), 100);
    const reopened = await open({ experiment: manager.experiment });
    expect(reopened.manager.recovery.corrupted).toEqual([record?.id]);
    await reopened.manager.close();
  });

  it('an async sharded save holds the values of the call, whatever the caller changes afterwards', async () => {
    const { manager } = await open({ async: true });
    const live = state(1);
    const outcome = await manager.save({ state: live, step: 1 });
    expect(outcome.status).toBe('pending');
    for (const t of Object.values(live)) t.data.fill(0xee); // the training loop moves on
    const done = outcome.status === 'pending' ? await outcome.done : undefined;
    expect(done?.status).toBe('saved');
    const loaded = await manager.load();
    for (const [name, t] of Object.entries(state(1))) expect(tensorsEqual(loaded.state[name] as Tensor, t)).toBe(true);
    await manager.close();
  });

  it('retention and delete remove the whole folder, never half of it', async () => {
    const { manager } = await open({ retention: keepLatest(1) });
    const { record: first } = await manager.save({ state: state(1), step: 1 });
    await manager.save({ state: state(2), step: 2 });
    expect(existsSync(join(manager.folder, first?.id as string))).toBe(false);
    const { record: third } = await manager.save({ state: state(3), step: 3, protect: true });
    await manager.delete(third?.id as string, { force: true });
    expect(existsSync(join(manager.folder, third?.id as string))).toBe(false);
    await manager.close(); // the journal folded into the snapshot: what deletions are still listed
    expect(indexOf(manager.folder).deleting).toEqual([]);
    expect(indexOf(manager.folder).checkpoints).toEqual([]); // the second went to retention when the third came
    const folders = readdirSync(manager.folder, { withFileTypes: true }).filter((e) => e.isDirectory());
    expect(folders.map((e) => e.name)).toEqual(['.ckpt-staging']);
  });

  it('an unfinished deletion is finished on the next open, and a folder holding anything else is left', async () => {
    const { manager } = await open();
    const { record } = await manager.save({ state: state(), step: 1 });
    await manager.close();
    if (!record?.files) throw new Error('expected a sharded record');
    const set = record.id;
    // A deletion that died after journaling: the record is gone, its files remain, listed in `deleting`.
    const index = indexOf(manager.folder);
    index.checkpoints = [];
    index.deleting = [...record.files.map((f) => f.file), set];
    writeFileSync(join(manager.folder, 'checkpoint_metadata.json'), JSON.stringify(index));
    writeFileSync(join(manager.folder, set, 'notes.txt'), 'someone else put this here');
    const reopened = await open({ experiment: manager.experiment });
    expect(readdirSync(join(manager.folder, set))).toEqual(['notes.txt']);
    expect(reopened.manager.recovery.removed).toEqual(expect.arrayContaining(record.files.map((f) => f.file)));
    await reopened.manager.close();
  });

  it('backs a set up, and restores it after a shard is lost', async () => {
    const { manager } = await open();
    const { record } = await manager.save({ state: state(4), step: 1 });
    if (!record?.files) throw new Error('expected a sharded record');
    const backed = await manager.backup(record.id);
    expect(backed.backup?.file).toBe(`backups/${record.file}`);
    for (const file of record.files) expect(sha256(join(manager.folder, 'backups', file.file))).toBe(file.sha256);
    rmSync(join(manager.folder, record.files[0]?.file as string));
    expect((await manager.verify(record.id))[0]?.status).toBe('corrupted');
    await manager.restore(record.id);
    expect((await manager.verify(record.id))[0]?.status).toBe('ok');
    // Deleting the checkpoint takes its backup's folder too.
    await manager.delete(record.id);
    expect(existsSync(join(manager.folder, 'backups', record.id))).toBe(false);
    await manager.close();
  });

  it('exports every file of a set, each checked against its digest, with a manifest naming them', async () => {
    const { manager } = await open();
    const { record } = await manager.save({ state: state(5), step: 1 });
    if (!record?.files) throw new Error('expected a sharded record');
    const copy = await manager.export(record.id, join(root, `export-${experiments}`));
    expect(copy.files.map((f) => f.sha256)).toEqual(record.files.map((f) => f.sha256));
    for (const file of copy.files) expect(sha256(file.path)).toBe(file.sha256);
    const manifest = JSON.parse(readFileSync(copy.manifest, 'utf8'));
    expect(manifest.files.map((f: { file: string }) => f.file)).toEqual(record.files.map((f) => f.file));
    await manager.close();
  });

  it('recovery commits a set a dead writer renamed into place, and drops one it never finished', async () => {
    const { manager } = await open();
    const { record } = await manager.save({ state: state(6), step: 1 });
    await manager.close();
    if (!record?.files) throw new Error('expected a sharded record');
    const dead = `${host}-${spawnSync(process.execPath, ['-e', '0']).pid}-1`;
    const index = indexOf(manager.folder);
    const [stored] = index.checkpoints.splice(0, 1);
    const intent = { ...stored, size: 0, sha256: '', files: [{ file: stored.file, size: 0, sha256: '' }] };
    const unfinished = { ...intent, id: 'never-renamed', file: 'never-renamed/model.safetensors.index.json' };
    unfinished.files = [{ file: unfinished.file, size: 0, sha256: '' }];
    index.pending = [
      { owner: dead, record: intent },
      { owner: dead, record: unfinished },
    ];
    writeFileSync(join(manager.folder, 'checkpoint_metadata.json'), JSON.stringify(index));
    // What the dead writer left in staging: half of the second set.
    const staging = join(manager.folder, '.ckpt-staging', `${dead}+0badf00d`, 'never-renamed');
    mkdirSync(staging, { recursive: true });
    writeFileSync(join(staging, 'model-00001-of-00004.safetensors'), 'half');
    const reopened = await open({ experiment: manager.experiment });
    expect(reopened.manager.recovery).toMatchObject({ rolledForward: [record.id], dropped: ['never-renamed'] });
    const [committed] = await reopened.manager.list();
    expect(committed?.files).toEqual(expect.arrayContaining(record.files));
    expect(committed?.files?.at(-1)?.file).toBe(record.file);
    expect(committed?.size).toBe(record.size);
    expect(readdirSync(join(manager.folder, '.ckpt-staging'))).toEqual([]);
    expect((await reopened.manager.verify())[0]?.status).toBe('ok');
    await reopened.manager.close();
  });

  it('refuses a record whose files leave its folder, keeping the rest of the index usable', async () => {
    const { manager } = await open();
    const { record } = await manager.save({ state: state(7), step: 1 });
    await manager.save({ state: state(8), step: 2 });
    await manager.close();
    const index = indexOf(manager.folder);
    index.checkpoints[0].files[0].file = 'elsewhere/model-00001-of-00004.safetensors';
    writeFileSync(join(manager.folder, 'checkpoint_metadata.json'), JSON.stringify(index));
    const reopened = await open({ experiment: manager.experiment });
    expect(reopened.manager.recovery.rejected.join('\n')).toMatch(/not in the checkpoint's folder/);
    expect((await reopened.manager.list()).map((r) => r.id)).not.toContain(record?.id);
    expect(await reopened.manager.list()).toHaveLength(1);
    await reopened.manager.close();
  });
});

describe.skipIf(skipPython)('a sharded checkpoint as Python reads it', () => {
  beforeAll(() => requirePythonModules(['safetensors', 'numpy']));

  it('the index and shards load with Python safetensors, tensor by tensor', async () => {
    const { manager } = await open();
    const { record } = await manager.save({ state: state(9), step: 1 });
    const script = `
import json, os, sys
from safetensors.numpy import load_file
index_path = sys.argv[1]
index = json.load(open(index_path))
folder = os.path.dirname(index_path)
out = {}
for name, shard in index['weight_map'].items():
    out[name] = float(load_file(os.path.join(folder, shard))[name][0])
print(json.dumps(out))
`;
    const seen = JSON.parse(runPython(script, [record?.path as string]).stdout);
    expect(Object.keys(seen)).toHaveLength(8);
    for (let i = 0; i < 8; i++) expect(seen[`model.layers.${i}.weight`]).toBe(9000 + i);
    await manager.close();
  });
});
