// Fuzz target of the manager's own files (see docs/formats-and-safety.md,
// "Fuzzing"): `checkpoint_metadata.json` and its journal, mutated, in a copy
// of a folder holding real checkpoints. Opening, listing, loading and
// verifying must succeed or fail with a typed error, and no checkpoint file
// may be lost or changed because an index was damaged.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointManager, CkptError, fromTypedArray, keepLatest } from '@ckpt/core';
import { fc, fuzz, hostileJsonVariants, mutatedBytes } from '@ckpt/testkit/fuzz';
import { beforeAll, describe, expect, it } from 'vitest';
import { safetensors } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'ckpt-st-fuzz-manager-'));
const template = join(root, 'template');
/** The experiment's folder under a manager's directory. */
const experiment = (directory: string) => join(directory, 'fuzz');
const SNAPSHOT = 'checkpoint_metadata.json';
const JOURNAL = `${SNAPSHOT}.journal`;
let snapshot: Buffer;
let journal: Buffer;
let checkpoints: Map<string, Buffer>;

const open = (directory: string) =>
  CheckpointManager.open({
    directory,
    experiment: 'fuzz',
    storage: safetensors,
    retention: keepLatest(3),
    best: { monitor: 'loss' },
    integrity: { fsync: false },
    warn: () => {},
  });

beforeAll(async () => {
  const manager = await open(template);
  for (let epoch = 0; epoch < 5; epoch++) {
    await manager.save({
      state: { w: fromTypedArray(Float32Array.of(epoch, 1, 2)) },
      epoch,
      metrics: { loss: 1 / (epoch + 1) },
    });
  }
  await manager.tag('latest', 'good');
  await manager.protect('latest');
  await manager.describe('best', 'the best one');
  // Copied before close, so the journal still holds the changes since the last compaction.
  snapshot = readFileSync(join(experiment(template), SNAPSHOT));
  journal = readFileSync(join(experiment(template), JOURNAL));
  checkpoints = new Map(
    readdirSync(experiment(template))
      .filter((name) => name.endsWith('.safetensors'))
      .map((name) => [name, readFileSync(join(experiment(template), name))]),
  );
  await manager.close();
});

/** A file the damaged index itself asks to delete (a `deleting` list naming it) may go; no other may. */
function mayGo(name: string, texts: string[]): boolean {
  return texts.some((text) => {
    const at = text.indexOf('"deleting"');
    return at >= 0 && text.indexOf(JSON.stringify(name).slice(1, -1), at) >= 0;
  });
}

/** What a user does with the folder: open, list, load the latest, verify, close. */
async function exercise(folder: string): Promise<void> {
  const manager = await open(folder);
  try {
    for (const record of await manager.list()) expect(typeof record.file).toBe('string');
    const latest = await manager.latest();
    if (latest) await manager.load(latest.id);
    await manager.verify('all');
  } finally {
    await manager.close();
  }
}

function expectNothingLost(folder: string, texts: string[]): void {
  for (const [name, bytes] of checkpoints) {
    if (mayGo(name, texts)) continue;
    const path = join(folder, name);
    if (!existsSync(path)) throw new Error(`${name} was lost`);
    if (!readFileSync(path).equals(bytes)) throw new Error(`${name} was changed`);
  }
}

describe('fuzzing the manager index', () => {
  it('a damaged snapshot or journal opens or is refused with a typed error, and loses no checkpoint', async () => {
    expect(journal.byteLength).toBeGreaterThan(0);
    expect(checkpoints.size).toBe(3);
    const encode = (text: string) => Buffer.from(text);
    const lines = journal.toString('utf8').split('\n');
    // A journal with one line's values replaced by hostile ones (the line stays valid JSON).
    const hostileJournal = fc
      .nat(lines.length - 2)
      .chain((i) => hostileJsonVariants(lines[i] as string).map((line) => lines.with(i, line).join('\n')));
    const damage = fc.record({
      snapshot: fc.option(
        fc.oneof(
          mutatedBytes([snapshot], { focus: snapshot.byteLength, maxEdits: 4 }),
          hostileJsonVariants(snapshot.toString('utf8')).map(encode),
        ),
        { freq: 2 },
      ),
      journal: fc.option(
        fc.oneof(mutatedBytes([journal], { focus: journal.byteLength, maxEdits: 4 }), hostileJournal.map(encode)),
        { freq: 2 },
      ),
    });
    let n = 0;
    const summary = await fuzz(
      'manager/index-files',
      damage.filter((d) => d.snapshot !== null || d.journal !== null),
      async (d) => {
        const folder = join(root, `case-${n++}`);
        cpSync(template, folder, { recursive: true });
        // The template's snapshot after close is compacted; each case starts from the copies taken before.
        writeFileSync(join(experiment(folder), SNAPSHOT), d.snapshot ?? snapshot);
        writeFileSync(join(experiment(folder), JOURNAL), d.journal ?? journal);
        const texts = [d.snapshot, d.journal].map((b) => Buffer.from(b ?? '').toString('latin1'));
        const failure = await exercise(folder).then(
          () => undefined,
          (error: unknown) => error,
        );
        expectNothingLost(experiment(folder), texts);
        if (failure) throw failure;
      },
      { runs: 400 },
    );
    expect(summary.accepted).toBeGreaterThan(0);
  });
});

describe('what fuzzing found', () => {
  it('values whose toString is data, anywhere in the index, give typed errors or are set aside', async () => {
    const hostile = '{"toString":1}';
    const index = JSON.parse(snapshot.toString('utf8'));
    const variants = [
      { ...index, version: JSON.parse(hostile) }, // refused: String() of it threw a TypeError
      { ...index, nextSequence: JSON.parse(hostile) }, // Number() of it threw
      {
        ...index,
        checkpoints: index.checkpoints.map((r: object) => ({ ...r, tags: ['ok', JSON.parse(hostile)] })),
      }, // tags.map(String) threw
    ];
    for (const [i, variant] of variants.entries()) {
      const folder = join(root, `hostile-${i}`);
      cpSync(template, folder, { recursive: true });
      writeFileSync(join(experiment(folder), SNAPSHOT), JSON.stringify(variant));
      writeFileSync(join(experiment(folder), JOURNAL), '');
      const failure = await exercise(folder).then(
        () => undefined,
        (error: unknown) => error,
      );
      if (failure !== undefined) expect(failure, `variant ${i}`).toBeInstanceOf(CkptError);
      expectNothingLost(experiment(folder), []);
    }
  });

  it('a save with an argument that has no prototype is refused typed', async () => {
    const folder = join(root, 'bare-argument');
    const manager = await open(folder);
    const bare = Object.create(null);
    await expect(manager.save({ state: {}, step: bare })).rejects.toBeInstanceOf(CkptError);
    await expect(manager.save({ state: {}, metrics: bare })).resolves.toBeDefined(); // an empty record of metrics
    await manager.close();
  });
});
