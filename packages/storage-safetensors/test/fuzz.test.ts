// Fuzz targets of the safetensors reader (see docs/formats-and-safety.md,
// "Fuzzing"): mutants of files written by Python and of generated headers go
// through both header parsers and the whole backend; generated state trees
// make the save → load round trip. Fixed seed and bounded count here;
// `tools/fuzz/campaign.mjs` runs the same targets longer.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CkptError, fromNumbers, parseShardIndex } from '@ckpt/core';
import { backend } from '@ckpt/native';
import { fc, fuzz, fuzzRoundTrip, hostileJsonVariants, mutatedBytes } from '@ckpt/testkit/fuzz';
import { describe, expect, it } from 'vitest';
import { readHeaderInJavaScript, safetensors } from '../src/index.js';
import { readHeaderNatively } from '../src/native-header.js';
import { hostileCases } from './hostile-files.js';

const dir = mkdtempSync(join(tmpdir(), 'ckpt-st-fuzz-'));
const regressions = (target: string) => fileURLToPath(new URL(`./fuzz-regressions/${target}/`, import.meta.url));
const sharedFixtures = fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));
const fixtures = readdirSync(sharedFixtures)
  .filter((name) => name.endsWith('.safetensors'))
  .map((name) => readFileSync(join(sharedFixtures, name)));
// Mostly files Python wrote (a few edits keep some valid), sometimes the hostile cases.
const mutants = fc.oneof(
  { arbitrary: mutatedBytes(fixtures, { maxEdits: 3 }), weight: 3 },
  { arbitrary: mutatedBytes(hostileCases.map(([, bytes]) => bytes)), weight: 1 },
);

let counter = 0;
function fileOf(bytes: Uint8Array, extension = '.safetensors'): string {
  const path = join(dir, `v${counter++}${extension}`);
  writeFileSync(path, bytes);
  return path;
}

/** The header a parser read, as canonical JSON, or the code it refused with. */
async function headerOutcome(read: () => ReturnType<typeof readHeaderNatively> | Promise<unknown>): Promise<string> {
  try {
    const header = (await read()) as ReturnType<typeof readHeaderNatively>;
    if (!header) return 'no addon';
    const metadata = Object.entries(header.metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
    return JSON.stringify([header.headerLength, header.dataStart, header.fileSize, header.entries, metadata]);
  } catch (error) {
    if (error instanceof CkptError) return `refused ${error.code}`;
    throw error;
  }
}

const bytesTarget = { bytesOf: (b: Uint8Array) => b, fromBytes: (b: Uint8Array) => b };

describe('fuzzing the safetensors reader', () => {
  it('mutated files: the backend loads or refuses with a typed error, and the two header parsers agree', async () => {
    const summary = await fuzz(
      'safetensors/mutated-files',
      mutants,
      async (bytes) => {
        const path = fileOf(bytes);
        if (backend.kind === 'native') {
          const js = await headerOutcome(() => readHeaderInJavaScript(path));
          const native = await headerOutcome(() => readHeaderNatively(path));
          if (native !== js) throw new Error(`the parsers disagree: addon ${native}, JavaScript ${js}`);
        }
        const loaded = await safetensors.load(path, { copy: true });
        await safetensors.inspect(path);
        expect(Object.getPrototypeOf(loaded.metadata)).toBe(null);
      },
      { runs: 1500, regressions: regressions('mutated-files'), ...bytesTarget },
    );
    expect(summary.accepted).toBeGreaterThan(0);
    expect(summary.refused).toBeGreaterThan(summary.accepted);
  });

  it('shard index JSON: parsed or refused with a typed error, into maps without a prototype', async () => {
    const index = JSON.stringify({
      metadata: { total_size: 64 },
      weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
    });
    const text = fc.oneof(
      mutatedBytes([new TextEncoder().encode(index)], { focus: 160 }).map((b) => new TextDecoder().decode(b)),
      hostileJsonVariants(index),
      fc.json({ maxDepth: 3 }),
      fc
        .record({ metadata: fc.jsonValue({ maxDepth: 2 }), weight_map: fc.dictionary(fc.string(), fc.jsonValue()) })
        .map((v) => JSON.stringify(v)),
    );
    await fuzz(
      'safetensors/shard-index',
      text,
      (json) => {
        const parsed = parseShardIndex(json, 'model.safetensors.index.json');
        for (const [name, file] of parsed.weightMap) {
          if (typeof name !== 'string' || typeof file !== 'string') throw new Error('a non-string entry');
        }
        expect(Object.getPrototypeOf(parsed.metadata)).toBe(null);
      },
      { runs: 1500 },
    );
  });

  it('generated state trees: what saves loads back exactly', async () => {
    const summary = await fuzzRoundTrip(safetensors, dir, 300);
    expect(summary.accepted).toBeGreaterThan(summary.executions / 2);
  });
});

describe('what fuzzing found', () => {
  it('a file without __metadata__ loads with metadata that has no prototype', async () => {
    const path = join(dir, 'no-metadata.safetensors');
    await safetensors.save(path, { a: fromNumbers('F32', [1]) }, { format: false, fsync: false });
    const { metadata } = await safetensors.load(path);
    expect(Object.getPrototypeOf(metadata)).toBe(null);
    expect(Object.keys(metadata)).toEqual([]);
  });

  it("a shard index's metadata has no prototype, whatever keys it holds or lacks", () => {
    for (const text of ['{"weight_map":{}}', '{"metadata":{"__proto__":{"x":1},"constructor":2},"weight_map":{}}']) {
      const { metadata } = parseShardIndex(text, 'model.safetensors.index.json');
      expect(Object.getPrototypeOf(metadata)).toBe(null);
    }
    const { metadata } = parseShardIndex('{"metadata":{"__proto__":{"x":1}},"weight_map":{}}', 'i.json');
    expect(Object.keys(metadata)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('what fuzzing found: objects whose toString is data', () => {
  it('a shard index mapping a name to such an object is refused typed', () => {
    const text = '{"weight_map":{"a":{"toString":1}}}';
    expect(() => parseShardIndex(text, 'model.safetensors.index.json')).toThrow(CkptError);
  });
});
