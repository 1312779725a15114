import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromTypedArray, isTensor, unflatten } from '@ckpt/core';
import { pytorch } from '@ckpt/storage-pytorch';
import { safetensors } from '@ckpt/storage-safetensors';
import { describe, expect, it } from 'vitest';
import { ckpt, scratch } from './support/run.js';

// Files and folders from someone else, through the ckpt command: names that are JavaScript's own
// (`__proto__`, `constructor`, `prototype`), data wider or deeper than a call stack, hostile folders.
const PROTO_NAMES = ['__proto__', 'constructor', 'prototype'];
const f32 = (...values: number[]) => fromTypedArray(Float32Array.from(values));

/** Replaces a safetensors file's `ckpt.structure` metadata with `structure`, keeping the header length honest. */
function rewriteStructure(path: string, structure: string): void {
  const bytes = readFileSync(path);
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
  header.__metadata__['ckpt.structure'] = structure;
  const text = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(text.length));
  writeFileSync(path, Buffer.concat([prefix, text, bytes.subarray(8 + length)]));
}

describe('names that are JavaScript property names stay ordinary names', () => {
  it.each(['safetensors', 'pt'])('diff sees a difference in a tensor named __proto__ (%s)', async (ext) => {
    const dir = scratch('proto-diff');
    const backend = ext === 'pt' ? pytorch : safetensors;
    for (const name of PROTO_NAMES) {
      const a = join(dir, `a-${name}.${ext}`);
      const b = join(dir, `b-${name}.${ext}`);
      await backend.save(a, { [name]: f32(1, 2), same: f32(0) } as never);
      await backend.save(b, { [name]: f32(1, 3), same: f32(0) } as never);
      const run = ckpt(['diff', a, b, '--json']);
      expect(run.code, `${name}: ${run.stderr}`).toBe(1);
      expect(run.json().identical).toBe(false);
      expect(Object.keys(run.json().tensors).sort()).toEqual([name, 'same'].sort());
    }
  });

  it('tensors named __proto__, constructor and prototype round-trip through both formats', async () => {
    const dir = scratch('proto-names');
    const state = Object.create(null);
    for (const [i, name] of PROTO_NAMES.entries()) state[name] = f32(i);
    for (const [backend, ext] of [
      [safetensors, 'safetensors'],
      [pytorch, 'pt'],
    ] as const) {
      const path = join(dir, `names.${ext}`);
      await backend.save(path, state);
      const { state: loaded } = await backend.load(path);
      expect(Object.keys(loaded).sort()).toEqual([...PROTO_NAMES].sort());
      for (const name of PROTO_NAMES) expect(isTensor((loaded as Record<string, unknown>)[name])).toBe(true);
      expect(Object.getPrototypeOf(loaded) === null || Object.getPrototypeOf(loaded) === Object.prototype).toBe(true);
    }
  });

  it('a __proto__ key in the stored structure is an ordinary key, not a prototype', async () => {
    const dir = scratch('proto-structure');
    const path = join(dir, 'structure.safetensors');
    await safetensors.save(path, { outer: { inner: f32(1) }, other: 1 } as never);
    // A tensor under `__proto__` of an otherwise empty object (written as text: a literal would set a prototype).
    rewriteStructure(path, '{"outer":{"__proto__":{"$tensor":"outer.inner"}},"other":1}');
    const { state } = await safetensors.load(path);
    const outer = (state as Record<string, unknown>).outer as object;
    expect(isTensor(outer)).toBe(false);
    expect(Object.keys(outer)).toEqual(['__proto__']);
    expect(isTensor(Object.getOwnPropertyDescriptor(outer, '__proto__')?.value)).toBe(true);
  });

  it('unflatten never reaches Object.prototype', () => {
    const tree = unflatten([
      ['__proto__.polluted', 1],
      ['constructor.prototype.polluted', 2],
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(tree).sort()).toEqual(['__proto__', 'constructor']);
  });
});

describe('data wider or deeper than the call stack', () => {
  it('a legitimate 200,000-item tuple inspects and loads', async () => {
    const dir = scratch('wide');
    const path = join(dir, 'wide.pt');
    const { Tuple } = await import('@ckpt/core');
    await pytorch.save(path, {
      ids: Tuple.fromItems(Array.from({ length: 200_000 }, (_, i) => i)),
      w: f32(1),
    } as never);
    const run = ckpt(['inspect', path, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const { state } = await pytorch.load(path);
    expect(((state as Record<string, unknown>).ids as unknown[]).length).toBe(200_000);
  });

  it('a structure nested a million levels deep is refused with CKPT_LIMIT, not a stack overflow', async () => {
    const dir = scratch('deep');
    const path = join(dir, 'deep.safetensors');
    await safetensors.save(path, { a: { b: f32(1) } } as never);
    const depth = 1_000_000;
    rewriteStructure(path, `${'['.repeat(depth)}${']'.repeat(depth)}`);
    const run = ckpt(['verify', path]);
    expect(run.stderr).toBe(''); // no stack trace
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/nests too deep.*CKPT_MAX_DEPTH.*\[CKPT_LIMIT\]/);
  });
});

describe('a safetensors shape nested a million levels deep', () => {
  it('is refused by inspect with a short message, not a stack overflow', () => {
    const dir = scratch('deep-shape');
    const depth = 1_000_000;
    const header = Buffer.from(
      `{"x":{"dtype":"F32","shape":${'['.repeat(depth)}${']'.repeat(depth)},"data_offsets":[0,4]}}`,
    );
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(header.length));
    const path = join(dir, 'deep.safetensors');
    writeFileSync(path, Buffer.concat([length, header, Buffer.alloc(4)]));
    const run = ckpt(['inspect', path]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/shape that is not a list of integers \(found: an array of 1 items\) \[CKPT_FORMAT\]/);
  });
});

describe('hostile experiment folders, through the command', () => {
  it('list and summary delete nothing, inside or outside, and export never writes outside', () => {
    const root = scratch('hostile-cli');
    const demo = ckpt(['demo', '--epochs', '3', '--crash-at', '2', '--folder', 'demo'], { cwd: root });
    expect(demo.code, demo.stderr).toBe(0);
    const folder = join(root, 'demo', 'checkpoints', 'spiral-mlp');
    const outside = join(root, 'victim');
    mkdirSync(outside);
    writeFileSync(join(outside, 'precious.txt'), 'keep');
    symlinkSync(outside, join(folder, 'linked'));
    writeFileSync(join(folder, '.leftover.ckpt-tmp'), 'partial');
    const indexPath = join(folder, 'checkpoint_metadata.json');
    const index = JSON.parse(readFileSync(indexPath, 'utf8'));
    index.deleting = ['linked/precious.txt'];
    index.checkpoints[0].id = '../../victim/pwned';
    writeFileSync(indexPath, JSON.stringify(index));
    const config = ['--config', join(root, 'demo', 'ckpt.config.yaml')];
    for (const command of ['list', 'summary']) {
      const run = ckpt([...config, command]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/refused and set aside/);
    }
    expect(readFileSync(join(outside, 'precious.txt'), 'utf8')).toBe('keep');
    expect(readFileSync(join(folder, '.leftover.ckpt-tmp'), 'utf8')).toBe('partial'); // reading commands remove nothing
    const out = join(root, 'out');
    expect(ckpt([...config, 'export', 'latest', out, '--format', 'pytorch']).code).toBe(0);
    expect(() => readFileSync(join(root, 'victim', 'pwned.manifest.json'))).toThrow();
  });
});

describe('JavaScript property names as metadata keys and index keys', () => {
  it('safetensors metadata keys __proto__ and constructor come back as ordinary keys', async () => {
    const dir = scratch('proto-meta');
    const path = join(dir, 'meta.safetensors');
    const metadata0 = JSON.parse('{"__proto__": "p", "constructor": "c"}'); // own keys, as a file would give them
    await safetensors.save(path, { w: f32(1) } as never, { metadata: metadata0 });
    const { metadata } = await safetensors.load(path);
    expect(Object.keys(metadata).sort()).toEqual(['__proto__', 'constructor', 'format'].sort());
    expect(Object.getOwnPropertyDescriptor(metadata, '__proto__')?.value).toBe('p');
    const run = ckpt(['inspect', path, '--json']);
    expect(run.json().metadata.constructor).toBe('c');
  });

  it('metric names and tags __proto__ in an index are listed and counted like any other', () => {
    const root = scratch('proto-index');
    expect(ckpt(['demo', '--epochs', '2', '--crash-at', '1', '--folder', 'demo'], { cwd: root }).code).toBe(0);
    const folder = join(root, 'demo', 'checkpoints', 'spiral-mlp');
    const indexPath = join(folder, 'checkpoint_metadata.json');
    const index = JSON.parse(readFileSync(indexPath, 'utf8'));
    for (const record of index.checkpoints) record.tags = ['__proto__', 'prototype'];
    // Metric names written as text: an object literal's `__proto__` would set a prototype, not a key.
    writeFileSync(
      indexPath,
      JSON.stringify(index).replaceAll('"metrics":{', '"metrics":{"__proto__":0.5,"constructor":2,'),
    );
    const config = ['--config', join(root, 'demo', 'ckpt.config.yaml')];
    const listed = ckpt([...config, 'list', '--json']).json();
    expect(listed[0].tags).toEqual(['__proto__', 'prototype']);
    expect(Object.getOwnPropertyDescriptor(listed[0].metrics, '__proto__')?.value).toBe(0.5);
    expect(listed[0].metrics.constructor).toBe(2);
    const summary = ckpt([...config, 'summary', '--json']).json();
    expect(Object.getOwnPropertyDescriptor(summary.byTag, '__proto__')?.value).toBe(index.checkpoints.length);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
