import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flattenTensors, isCkptError, type StateValue, StorageRegistry } from '@ckpt/core';
import { pytorch } from '@ckpt/storage-pytorch';
import { safetensors } from '@ckpt/storage-safetensors';
import { beforeAll, describe, expect, it } from 'vitest';
import { runPythonFile, skipPython } from '../../../tools/testing/python.js';
import { expectMatchesManifest } from '../../storage-pytorch/test/manifest.js';
import { ckpt, scratch } from './support/run.js';

// Checkpoint files real projects ship in their PyPI wheels (tools/realworld/corpus.json): legacy and zip torch
// files, files saved on CUDA, a training checkpoint with optimizer state, safetensors, a TorchScript program.
// Each must read as the reference library reads it, convert to safetensors and back exactly, and what torch
// refuses ckpt refuses too.
const tools = fileURLToPath(new URL('../../../tools/realworld/', import.meta.url));
const registry = new StorageRegistry([safetensors, pytorch]);

interface CorpusFile {
  package: string;
  path: string;
  local: string;
  expect: 'same-as-torch' | 'refused';
  code?: string;
  notes: string;
}

type Reference = Record<string, { ok?: unknown; refused?: string }>;

let files: CorpusFile[] = [];
let reference: Reference = {};

/** name -> dtype, shape and SHA-256 of the bytes, for every tensor of a state. */
function tensorTable(state: StateValue): Record<string, string> {
  const table: Record<string, string> = Object.create(null);
  for (const [name, t] of flattenTensors(state))
    table[name] = `${t.dtype} [${t.shape.join(',')}] ${createHash('sha256').update(t.data).digest('hex')}`;
  return table;
}

async function load(path: string) {
  return (await registry.resolve(path)).load(path);
}

describe.skipIf(skipPython)('real-world checkpoint files', () => {
  beforeAll(() => {
    // Downloads (once; cached in tools/realworld/.cache) the wheels and checks every file's SHA-256.
    files = JSON.parse(runPythonFile(join(tools, 'fetch.py')).stdout).files;
    reference = JSON.parse(
      runPythonFile(join(tools, 'describe.py'), [], JSON.stringify(files.map((f) => f.local))).stdout,
    );
  }, 600_000);

  it('the corpus has what the issue asks for: legacy, CUDA, optimizer state, TorchScript, safetensors', () => {
    const notes = files.map((f) => f.notes).join('\n');
    for (const kind of [/legacy/, /CUDA/, /optimizer state/, /TorchScript/, /safetensors/, /zip format/])
      expect(notes).toMatch(kind);
    expect(files.length).toBeGreaterThanOrEqual(10);
  });

  it('every file reads as the reference library reads it', async () => {
    for (const file of files.filter((f) => f.expect === 'same-as-torch')) {
      const want = reference[file.local];
      expect(want?.ok, `${file.path}: the reference refused it: ${want?.refused}`).toBeDefined();
      const { state } = await load(file.local);
      if (file.local.endsWith('.safetensors')) {
        // safetensors is flat: compare name by name.
        const pairs = (want?.ok as { __dict__: Array<[string, unknown]> } | undefined)?.__dict__ ?? [];
        const flat = Object.fromEntries(flattenTensors(state));
        expect(Object.keys(flat).sort(), file.path).toEqual(pairs.map(([name]) => name).sort());
        for (const [name, w] of pairs) expectMatchesManifest(flat[name] as StateValue, w, `${file.path}:${name}`);
      } else {
        expectMatchesManifest(state, want?.ok, file.path);
      }
    }
  });

  it('what torch refuses, ckpt refuses too, with the expected code', async () => {
    for (const file of files.filter((f) => f.expect === 'refused')) {
      expect(reference[file.local]?.refused, `${file.path}: torch loaded it`).toBeDefined();
      const error = await load(file.local).catch((e: unknown) => e);
      expect(isCkptError(error, file.code), `${file.path}: ${String(error)}`).toBe(true);
      const run = ckpt(['inspect', file.local]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`[${file.code}]`);
    }
  });

  it('converting to safetensors and back with `ckpt convert` is exact, and Python safetensors agrees', async () => {
    const dir = scratch('realworld');
    const converted: string[] = [];
    for (const [i, file] of files.filter((f) => f.expect === 'same-as-torch').entries()) {
      const original = tensorTable((await load(file.local)).state);
      const isSafetensors = file.local.endsWith('.safetensors');
      const there = join(dir, `${i}.${isSafetensors ? 'pt' : 'safetensors'}`);
      const back = join(dir, `${i}.back.${isSafetensors ? 'safetensors' : 'pt'}`);
      for (const [from, to] of [
        [file.local, there],
        [there, back],
      ] as const) {
        const run = ckpt(['convert', from, to]);
        expect(run.code, `${file.path}: ${run.stderr}`).toBe(0);
      }
      expect(tensorTable((await load(there)).state), `${file.path} converted`).toEqual(original);
      expect(tensorTable((await load(back)).state), `${file.path} and back`).toEqual(original);
      converted.push(isSafetensors ? back : there);
    }
    // The reference reads ckpt's safetensors files with the very tensors ckpt wrote.
    const python = JSON.parse(
      runPythonFile(join(tools, 'describe.py'), [], JSON.stringify(converted)).stdout,
    ) as Reference;
    for (const path of converted) {
      const pairs = (python[path]?.ok as { __dict__: Array<[string, unknown]> } | undefined)?.__dict__;
      expect(pairs, `${path}: ${python[path]?.refused}`).toBeDefined();
      const flat = Object.fromEntries(flattenTensors((await load(path)).state));
      for (const [name, w] of pairs ?? []) expectMatchesManifest(flat[name] as StateValue, w, `${path}:${name}`);
      expect(Object.keys(flat).length).toBe(pairs?.length);
    }
  });
});
