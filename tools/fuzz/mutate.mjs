#!/usr/bin/env node
/**
 * Mutation fuzzing of ckpt's file readers: takes seed files, makes random
 * hostile variants (bit flips, interesting bytes, truncations, repeated and
 * spliced slices, and for JSON headers edited text), and opens each with the
 * storage backends (detect, inspect, load). Every variant must load or be
 * refused with a typed CkptError, within the time budget per file.
 *
 *   node tools/fuzz/mutate.mjs [--seed N] [--count N] [--budget-ms N] [--out DIR] SEED_FILE...
 *
 * Prints one JSON line: { seed, count, accepted, refused, byCode, slowest, findings }. Exits 1 when a
 * variant crashed with another error or ran past the budget; the variant is written to --out (default
 * $TMPDIR/ckpt-fuzz-findings-<seed>) so it can become a regression file. Run it under `--max-old-space-size` to bound memory.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { CkptError, StorageRegistry } from '@ckpt/core';
import { pytorch } from '@ckpt/storage-pytorch';
import { safetensors } from '@ckpt/storage-safetensors';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seed: { type: 'string', default: '1' },
    count: { type: 'string', default: '1000' },
    'budget-ms': { type: 'string', default: '5000' },
    out: { type: 'string' },
  },
});
if (positionals.length === 0) {
  process.stderr.write('usage: mutate.mjs [--seed N] [--count N] [--budget-ms N] [--out DIR] SEED_FILE...\n');
  process.exit(2);
}

/** A small, fast, seeded generator (mulberry32): runs are reproducible from --seed. */
function generator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const random = generator(Number(values.seed));
const pick = (n) => Math.floor(random() * n);
const INTERESTING = [
  0x00, 0xff, 0x7f, 0x80, 0x28, 0x2e, 0x5d, 0x7d, 0x71, 0x68, 0x63, 0x52, 0x8a, 0x95, 0x0a, 0x22, 0x5b, 0x7b,
];
const JSON_EDITS = [
  (t) => t.replace(/\d+/, '18446744073709551615'),
  (t) => t.replace(/\d+/, '-1'),
  (t) => t.replace(/\[/, '['.repeat(200)),
  (t) => t.replace(/"F32"|"F64"|"I64"|"BF16"|"F16"/, '"X99"'),
  (t) => t.replace(/"shape":\[/, '"shape":[[1],'),
  (t) => t.replace(/"data_offsets":\[(\d+),(\d+)\]/, '"data_offsets":[$2,$1]'),
  (t) => t.replace(/"[^"]+":\{/, '"__proto__":{'),
  (t) => t.replace(/\{/, '{"constructor":{"prototype":{"x":1}},'),
];

function mutate(bytes) {
  let out = Buffer.from(bytes);
  const rounds = 1 + pick(4);
  for (let r = 0; r < rounds; r++) {
    const kind = pick(7);
    const at = out.length === 0 ? 0 : pick(out.length);
    if (kind === 0 && out.length > 0) out[at] ^= 1 << pick(8);
    else if (kind === 1 && out.length > 0) out[at] = INTERESTING[pick(INTERESTING.length)];
    else if (kind === 2) out = out.subarray(0, at);
    else if (kind === 3) {
      const length = pick(Math.min(64, out.length - at) + 1);
      const slice = out.subarray(at, at + length);
      const times = 1 + pick(64);
      out = Buffer.concat([out.subarray(0, at), ...Array.from({ length: times }, () => slice), out.subarray(at)]);
    } else if (kind === 4) out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + pick(16))]);
    else if (kind === 5 && out.length >= 8) {
      // safetensors: edit the JSON header's text, keeping its length field honest.
      const length = Number(out.readBigUInt64LE(0));
      if (length > 0 && length <= out.length - 8) {
        const text = JSON_EDITS[pick(JSON_EDITS.length)](out.subarray(8, 8 + length).toString('latin1'));
        const header = Buffer.from(text, 'latin1');
        const prefix = Buffer.alloc(8);
        prefix.writeBigUInt64LE(BigInt(header.length));
        out = Buffer.concat([prefix, header, out.subarray(8 + length)]);
      }
    } else if (out.length >= 4) out.writeUInt32LE(pick(2 ** 32), at - (at % 4) >= out.length - 3 ? 0 : at - (at % 4));
  }
  return out;
}

const registry = new StorageRegistry([safetensors, pytorch]);
const seeds = positionals.map((path) => ({ name: basename(path), bytes: readFileSync(path) }));
const work = mkdtempSync(join(tmpdir(), 'ckpt-fuzz-'));
// Findings outlive the run; the variants' scratch folder does not.
const out = values.out ?? join(tmpdir(), `ckpt-fuzz-findings-${values.seed}`);
const budgetMs = Number(values['budget-ms']);
const summary = { seed: Number(values.seed), count: 0, accepted: 0, refused: 0, byCode: {}, slowest: 0, findings: [] };

for (let i = 0; i < Number(values.count); i++) {
  const seed = seeds[pick(seeds.length)];
  const variant = mutate(seed.bytes);
  const ext = seed.name.slice(seed.name.indexOf('.'));
  const path = join(work, `variant${ext}`);
  writeFileSync(path, variant);
  const started = performance.now();
  let problem;
  try {
    const backend = await registry.resolve(path);
    await backend.inspect(path);
    await backend.load(path, { copy: true });
    summary.accepted++;
  } catch (error) {
    if (error instanceof CkptError) {
      summary.refused++;
      summary.byCode[error.code] = (summary.byCode[error.code] ?? 0) + 1;
    } else {
      problem = `${error?.name ?? 'error'}: ${String(error?.message ?? error).slice(0, 300)}`;
    }
  }
  const elapsed = performance.now() - started;
  summary.slowest = Math.max(summary.slowest, Math.round(elapsed));
  if (!problem && elapsed > budgetMs) problem = `took ${Math.round(elapsed)} ms, over the ${budgetMs} ms budget`;
  if (problem) {
    mkdirSync(out, { recursive: true });
    const saved = join(out, `finding-${summary.seed}-${i}${ext}`);
    writeFileSync(saved, variant);
    summary.findings.push({ from: seed.name, problem, saved });
  }
  summary.count++;
}
rmSync(work, { force: true, recursive: true });
process.stdout.write(`${JSON.stringify(summary)}\n`);
process.exit(summary.findings.length > 0 ? 1 : 0);
