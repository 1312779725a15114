// Fuzz targets of the torch reader (see docs/formats-and-safety.md,
// "Fuzzing"): mutants of files torch wrote (zip and legacy), of the pickles
// inside them (repacked, so the zip's checksums do not hide the unpickler),
// of hostile pickles and of a DCP checkpoint's .metadata; generated state
// trees make the save → load round trip. Nothing in any input may run: the
// canary file the payloads would create must never appear.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromNumbers } from '@ckpt/core';
import { fc, fuzz, fuzzRoundTrip, mutatedBytes } from '@ckpt/testkit/fuzz';
import { afterAll, describe, expect, it } from 'vitest';
import { dcp, pytorch, saveDcp } from '../src/index.js';
import { Op } from '../src/pickle/opcodes.js';
import { ZipArchive } from '../src/zip/reader.js';
import { PickleBuilder, writeArchive } from './pickle-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'ckpt-pt-fuzz-'));
const canary = join(dir, 'RAN');
const regressions = (target: string) => fileURLToPath(new URL(`./fuzz-regressions/${target}/`, import.meta.url));
const bytesTarget = { bytesOf: (b: Uint8Array) => b, fromBytes: (b: Uint8Array) => b };
const sharedFixtures = fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));
const corpus = fileURLToPath(new URL('./corpus/picklescan/', import.meta.url));

const torchFiles = readdirSync(sharedFixtures)
  .filter((name) => /\.(pt|ckpt|bin)$/.test(name))
  .map((name) => readFileSync(join(sharedFixtures, name)));
const isZip = (bytes: Uint8Array) => bytes[0] === 0x50 && bytes[1] === 0x4b;

let counter = 0;
function fileOf(bytes: Uint8Array, extension = '.pt'): string {
  const path = join(dir, `v${counter++}${extension}`);
  writeFileSync(path, bytes);
  return path;
}

/** A pickle calling module.name(command), as a payload would: it would create the canary if run. */
function payload(module: string, name: string): Uint8Array {
  return new PickleBuilder()
    .proto()
    .global(module, name)
    .string(`touch ${canary}`)
    .tuple(1)
    .op(Op.REDUCE)
    .stop()
    .bytes();
}

/** The data.pkl and storage records of a torch zip, to repack mutated pickles with. */
function partsOf(bytes: Uint8Array): { pickle: Uint8Array; records: Record<string, Uint8Array> } {
  const source = {
    path: 'seed.pt',
    size: bytes.byteLength,
    read: (at: number, n: number) => bytes.subarray(at, at + n),
  };
  const zip = ZipArchive.open(source);
  const records: Record<string, Uint8Array> = {};
  let pickle: Uint8Array | undefined;
  for (const entry of zip.entries) {
    const [, rest] = [entry.name.slice(0, entry.name.indexOf('/')), entry.name.slice(entry.name.indexOf('/') + 1)];
    if (rest === 'data.pkl') pickle = zip.read(entry);
    else if (rest.startsWith('data/')) records[rest.slice(5)] = zip.read(entry);
  }
  if (!pickle) throw new Error('a seed without data.pkl');
  return { pickle, records };
}

const archives = torchFiles.filter(isZip).flatMap((bytes) => {
  try {
    return [partsOf(bytes)];
  } catch {
    return []; // TorchScript and other archives without a data.pkl seed the file target only
  }
});
const payloads = [
  payload('posix', 'system'),
  payload('os', 'system'),
  payload('builtins', 'eval'),
  payload('builtins', 'exec'),
  payload('subprocess', 'call'),
  payload('__builtin__', 'eval'),
];
const corpusPickles = ['data', 'data2'].flatMap((folder) =>
  readdirSync(join(corpus, folder))
    .filter((name) => name.endsWith('.pkl'))
    .map((name) => readFileSync(join(corpus, folder, name))),
);

afterAll(() => {
  expect(existsSync(canary), 'a payload ran').toBe(false);
});

describe('fuzzing the torch reader', () => {
  it('mutated torch files (zip and legacy) load or are refused with a typed error', async () => {
    const zips = torchFiles.filter(isZip);
    const legacy = torchFiles.filter((bytes) => !isZip(bytes));
    const mutants = fc.oneof(
      { arbitrary: mutatedBytes(zips, { focus: 128, tail: 1024, maxEdits: 4 }), weight: 3 },
      { arbitrary: mutatedBytes(legacy, { focus: 1024, maxEdits: 4 }), weight: 2 },
    );
    const summary = await fuzz(
      'torch/mutated-files',
      mutants,
      async (bytes) => {
        const path = fileOf(bytes);
        await pytorch.inspect(path);
        const loaded = await pytorch.load(path, { copy: true });
        expect(Object.getPrototypeOf(loaded.metadata)).toBe(null);
      },
      { runs: 1500, regressions: regressions('mutated-files'), ...bytesTarget },
    );
    expect(summary.accepted).toBeGreaterThan(0);
  });

  it('mutated pickles, repacked in a valid zip, load or are refused with a typed error, and never run', async () => {
    const pickles = fc.oneof(
      {
        arbitrary: fc
          .tuple(
            fc.constantFrom(...archives),
            mutatedBytes(
              archives.map((a) => a.pickle),
              { maxEdits: 4 },
            ),
          )
          .map(([seed, pickle]) => ({ pickle, records: seed.records })),
        weight: 3,
      },
      {
        arbitrary: mutatedBytes([...payloads, ...corpusPickles], { maxEdits: 4 }).map((pickle) => ({
          pickle,
          records: {},
        })),
        weight: 1,
      },
    );
    const summary = await fuzz(
      'torch/mutated-pickles',
      pickles,
      async ({ pickle, records }) => {
        const path = join(dir, `p${counter++}.pt`);
        writeArchive(path, { pickle, records });
        await pytorch.load(path, { copy: true });
      },
      { runs: 1500 },
    );
    expect(summary.accepted).toBeGreaterThan(0);
    expect(summary.byCode.CKPT_UNSAFE_PICKLE ?? 0).toBeGreaterThan(0);
  });

  it('a mutated DCP .metadata loads or is refused with a typed error', async () => {
    const folder = join(dir, 'dcp');
    await saveDcp(
      folder,
      { model: { w: fromNumbers('F32', [1, 2, 3, 4], [2, 2]), b: fromNumbers('I64', [7]) }, step: 3, name: 'run' },
      { fsync: false },
    );
    const seed = readFileSync(join(folder, '.metadata'));
    await fuzz(
      'torch/dcp-metadata',
      mutatedBytes([seed], { focus: seed.byteLength, maxEdits: 4 }),
      async (bytes) => {
        writeFileSync(join(folder, '.metadata'), bytes);
        await dcp.load(folder);
      },
      { runs: 1000, regressions: regressions('dcp-metadata'), ...bytesTarget },
    );
  });

  it('generated state trees: what saves loads back exactly', async () => {
    mkdirSync(join(dir, 'round-trip'));
    const summary = await fuzzRoundTrip(pytorch, join(dir, 'round-trip'), 300);
    expect(summary.accepted).toBeGreaterThan(summary.executions / 2);
  });
});

describe('what fuzzing found', () => {
  it('a file torch wrote (no ckpt metadata record) loads with metadata that has no prototype', async () => {
    const lightning = await pytorch.load(join(sharedFixtures, 'lightning.ckpt'));
    expect(Object.getPrototypeOf(lightning.metadata)).toBe(null);
    expect(Object.keys(lightning.metadata)).toEqual(['pytorch-lightning_version']);
    const plain = await pytorch.load(join(sharedFixtures, 'all_dtypes.pt'));
    expect(Object.getPrototypeOf(plain.metadata)).toBe(null);
  });
});
