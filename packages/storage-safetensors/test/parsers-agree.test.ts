// The addon's header reader (the reference crate's validation) and the
// JavaScript parser must accept the same files with the same contents and
// refuse the same files: on fixtures written by Python, on every hostile
// case, and on thousands of mutated variants.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CkptError, tensor } from '@ckpt/core';
import { backend } from '@ckpt/native';
import { describe, expect, it } from 'vitest';
import { readHeaderInJavaScript, safetensors } from '../src/index.js';
import { readHeaderNatively } from '../src/native-header.js';
import { build, hostileCases, ok } from './hostile-files.js';

const dir = mkdtempSync(join(tmpdir(), 'ckpt-st-agree-'));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

type Outcome = { accepted: string } | { refused: string; why?: string };

/** What a parser made of a file: its contents as canonical JSON, or the error code. */
async function outcome(read: () => unknown): Promise<Outcome> {
  try {
    const header = (await read()) as Awaited<ReturnType<typeof readHeaderInJavaScript>>;
    const metadata = Object.entries(header.metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
    const { headerLength, dataStart, fileSize, entries } = header;
    return { accepted: JSON.stringify({ headerLength, dataStart, fileSize, entries, metadata }) };
  } catch (error) {
    if (!(error instanceof CkptError)) throw error;
    // The reason is kept off the comparison (the parsers word it differently), for the report.
    return Object.defineProperty({ refused: error.code }, 'why', { value: error.message, enumerable: false });
  }
}

async function compare(path: string): Promise<{ native: Outcome; js: Outcome }> {
  return {
    native: await outcome(() => readHeaderNatively(path)),
    js: await outcome(() => readHeaderInJavaScript(path)),
  };
}

/** A small deterministic generator (mulberry32), so a failure names a reproducible variant. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PUNCTUATION = [...'0123456789-+.eE"\\,:[]{} '].map((c) => c.charCodeAt(0));

/** A variant of `bytes`: one edit of the header text, its length prefix or the data's length. */
function mutate(bytes: Buffer, next: () => number): Buffer {
  const headerEnd = Math.min(bytes.length, 8 + Number(bytes.readBigUInt64LE(0)));
  const at = 8 + Math.floor(next() * (headerEnd - 8));
  const out = Buffer.from(bytes);
  switch (Math.floor(next() * 7)) {
    case 0:
      out[at] = PUNCTUATION[Math.floor(next() * PUNCTUATION.length)] as number;
      return out;
    case 1:
      out[at] = Math.floor(next() * 256);
      return out;
    case 2:
      return Buffer.concat([out.subarray(0, at), out.subarray(at + 1), Buffer.from(' ')]);
    case 3:
      return out.subarray(0, Math.floor(next() * out.length));
    case 4:
      return Buffer.concat([out, Buffer.alloc(1 + Math.floor(next() * 8))]);
    case 5: {
      // A letter for a letter: mostly a renamed tensor, sometimes another dtype or a broken key.
      const letter = out.indexOf(/[a-z]/.exec(out.toString('latin1', at, headerEnd))?.[0] ?? '\0', at);
      if (letter >= 0 && letter < headerEnd) out[letter] = 0x61 + Math.floor(next() * 26);
      return out;
    }
    default:
      out.writeBigUInt64LE(BigInt(Math.max(0, headerEnd - 8 + Math.floor(next() * 16) - 8)), 0);
      return out;
  }
}

const summary = (o: Outcome) => ('accepted' in o ? 'accepts' : `refuses: ${o.why}`);

let counter = 0;
function fileOf(bytes: Uint8Array): string {
  const path = join(dir, `v${counter++}.safetensors`);
  writeFileSync(path, bytes);
  return path;
}

describe.skipIf(backend.kind !== 'native')('the addon and the JavaScript parser agree', () => {
  it('on files written by Python, including every dtype, with identical contents', async () => {
    for (const name of ['mlp.safetensors', 'all_dtypes.safetensors']) {
      const { native, js } = await compare(fixture(name));
      expect('accepted' in native, name).toBe(true);
      expect(native).toEqual(js);
    }
  });

  it('on names outside ASCII, metadata and a tensor of no elements', async () => {
    const path = join(dir, 'names.safetensors');
    const one = (byte: number) => tensor('U8', [2], new Uint8Array([byte, byte]));
    await safetensors.save(
      path,
      {
        'é.weight': one(1),
        'emoji😀': one(2),
        'a"quote': one(3),
        'back\\slash': one(4),
        empty: tensor('F32', [0, 3], new Uint8Array(0)),
      },
      { metadata: { format: 'pt', clé: 'valeur', __proto__x: 'y' }, fsync: false },
    );
    const { native, js } = await compare(path);
    expect(native).toEqual(js);
    expect(
      JSON.parse((native as { accepted: string }).accepted).entries.map((e: { name: string }) => e.name),
    ).toContain('emoji😀');
  });

  it('on every hostile case: both refuse', async () => {
    for (const [what, bytes] of hostileCases) {
      const { native, js } = await compare(fileOf(bytes));
      expect({ what, native }).toEqual({ what, native: { refused: 'CKPT_FORMAT' } });
      expect({ what, js }).toEqual({ what, js: { refused: 'CKPT_FORMAT' } });
    }
  });

  it('on 3,000 mutated variants of valid files', async () => {
    const seeds = [
      readFileSync(fixture('mlp.safetensors')),
      readFileSync(fixture('all_dtypes.safetensors')),
      build(`{"__metadata__":{"k":"v"},${ok('a', '[0,16]')},${ok('b', '[16,32]', '[4]', 'I32')}}`, { data: 32 }),
    ];
    const next = random(17);
    const disagreements: string[] = [];
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const bytes = mutate(seeds[i % seeds.length] as Buffer, next);
      const path = fileOf(bytes);
      const { native, js } = await compare(path);
      if (JSON.stringify(native) !== JSON.stringify(js)) {
        disagreements.push(`variant ${i}: native ${summary(native)}; js ${summary(js)}`);
      }
      if ('accepted' in native) accepted++;
    }
    expect(disagreements).toEqual([]);
    // The mix exercises both answers, not only refusals.
    expect(accepted).toBeGreaterThan(150);
    expect(accepted).toBeLessThan(2900);
  }, 60_000);
});
