import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  byteLengthOf,
  CkptError,
  DETECT_BYTES,
  type DType,
  dtypeInfo,
  isTensor,
  numel,
  type StateTree,
  type StorageBackend,
  type Tensor,
  Tuple,
  tensor,
} from '@ckpt/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

export interface StorageSuiteOptions {
  /** Shown in the suite title; defaults to the backend's name. */
  name?: string;
  /** File name ending for test files; defaults to the backend's last extension. */
  extension?: string;
  /** Dtypes to round-trip; defaults to every dtype the backend claims. */
  dtypes?: readonly DType[];
  /** Whether nested trees with non-tensor values round-trip exactly (default true). */
  nestedTrees?: boolean;
  /** Whether user metadata round-trips (default true). */
  metadata?: boolean;
  /** Run the over-2-GiB tensor test (needs ~5 GB of disk and memory); default: env CKPT_TEST_BIG=1. */
  bigTensors?: boolean;
}

/** A shape whose element count fills whole bytes for `dtype` (sub-byte types need even counts). */
function shapeFor(dtype: DType): number[] {
  return dtypeInfo(dtype).bits % 8 === 0 ? [3, 5] : [4, 6];
}

function randomTensor(dtype: DType, shape: number[]): Tensor {
  return tensor(dtype, shape, new Uint8Array(randomBytes(byteLengthOf(dtype, shape))));
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function temporaries(folder: string): string[] {
  return readdirSync(folder).filter((f) => f.endsWith('.ckpt-tmp'));
}

/** Bytes this process has read with read(2) and friends (Linux), or undefined. */
function bytesReadSoFar(): number | undefined {
  try {
    const match = /^rchar:\s*(\d+)/m.exec(readFileSync('/proc/self/io', 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

function isMapped(path: string): boolean {
  try {
    return readFileSync('/proc/self/maps', 'utf8').includes(path);
  } catch {
    return false;
  }
}

/**
 * The conformance suite for a storage backend. Call it at the top level of a
 * vitest test file:
 *
 *     describeStorageBackend(() => myBackend, { extension: '.npz' });
 *
 * It saves and loads real files in a temporary folder and checks the
 * contract documented in docs/writing-a-storage-backend.md.
 */
export function describeStorageBackend(
  factory: () => StorageBackend | Promise<StorageBackend>,
  options: StorageSuiteOptions = {},
): void {
  let backend: StorageBackend;
  let dir: string;
  let extension: string;
  const file = (name: string) => join(dir, `${name}${extension}`);

  describe(`storage backend conformance: ${options.name ?? 'backend'}`, () => {
    beforeAll(async () => {
      backend = await factory();
      extension = options.extension ?? backend.extensions.at(-1) ?? '.ckpt';
      dir = mkdtempSync(join(tmpdir(), 'ckpt-testkit-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('declares a name, extensions and dtypes', () => {
      expect(backend.name).toMatch(/\S/);
      expect(backend.extensions.length).toBeGreaterThan(0);
      for (const ext of backend.extensions) expect(ext.startsWith('.')).toBe(true);
      expect(backend.dtypes.length).toBeGreaterThan(0);
    });

    it('round-trips every dtype it claims, byte for byte', async () => {
      const dtypes = options.dtypes ?? backend.dtypes;
      const state: StateTree = Object.fromEntries(
        dtypes.map((d) => [`t_${d.toLowerCase()}`, randomTensor(d, shapeFor(d))]),
      );
      await backend.save(file('dtypes'), state);
      const loaded = await backend.load(file('dtypes'));
      expect(loaded.format).toBe(backend.name);
      expect(loaded.state).toStrictEqual(state);
    });

    it('round-trips empty and 0-d tensors', async () => {
      const state: StateTree = {
        empty: tensor('F32', [0, 4], new Uint8Array(0)),
        scalar: tensor('F32', [], new Uint8Array(new Float32Array([Math.PI]).buffer)),
        nothing: tensor('I64', [0], new Uint8Array(0)),
      };
      await backend.save(file('edges'), state);
      expect((await backend.load(file('edges'))).state).toStrictEqual(state);
    });

    it.skipIf(options.metadata === false)('round-trips user metadata', async () => {
      const metadata = { epoch: '3', note: 'ünïcode ✓', empty: '' };
      await backend.save(file('metadata'), { w: randomTensor('F32', [2]) }, { metadata });
      const loaded = await backend.load(file('metadata'));
      expect(loaded.metadata).toMatchObject(metadata);
      expect((await backend.inspect(file('metadata'))).metadata).toMatchObject(metadata);
    });

    it.skipIf(options.nestedTrees === false)('round-trips a nested training state exactly', async () => {
      const state: StateTree = {
        model: { 'fc1.weight': randomTensor('F32', [4, 3]), 'fc1.bias': randomTensor('F32', [4]) },
        optimizer: {
          state: new Map([[0, { step: 10, exp_avg: randomTensor('F32', [4, 3]) }]]),
          param_groups: [{ lr: 0.001, betas: Tuple.of(0.9, 0.999), weight_decay: 0, params: [0, 1] }],
        },
        epoch: 7,
        global_step: 2n ** 60n,
        metrics: { val_loss: 0.25, best: Number.NaN, worst: -Infinity },
        config: { name: 'mlp', layers: [4, 3], dropout: null, tags: ['a', 'b'], resume: false },
      };
      await backend.save(file('nested'), state);
      expect((await backend.load(file('nested'))).state).toStrictEqual(state);
    });

    it('returns the size and SHA-256 of what it wrote', async () => {
      const result = await backend.save(file('digest'), { w: randomTensor('F32', [64, 64]) });
      expect(result.path).toBe(file('digest'));
      const bytes = readFileSync(result.path);
      expect(result.size).toBe(bytes.byteLength);
      expect(result.sha256).toBe(sha256(bytes));
      expect(result.files.map((f) => f.path)).toContain(result.path);
    });

    it('hands out copies on request, equal to the views', async () => {
      const state: StateTree = { w: randomTensor('F32', [16]) };
      await backend.save(file('copy'), state);
      const copied = await backend.load(file('copy'), { copy: true });
      expect(copied.zeroCopy).toBe(false);
      expect(copied.state).toStrictEqual(state);
    });

    it('inspects from the header alone: names, dtypes, shapes, sizes, parameter count', async () => {
      const state: StateTree = { a: randomTensor('F32', [256, 1024]), b: randomTensor('I64', [7]) };
      await backend.save(file('inspect'), state);
      const before = bytesReadSoFar();
      const inspection = await backend.inspect(file('inspect'));
      const after = bytesReadSoFar();
      const byName = new Map(inspection.tensors.map((t) => [t.name, t]));
      expect(byName.get('a')).toMatchObject({ dtype: 'F32', shape: [256, 1024], byteLength: 1 << 20 });
      expect(byName.get('b')).toMatchObject({ dtype: 'I64', shape: [7], byteLength: 56 });
      expect(inspection.parameterCount).toBe(numel([256, 1024]) + 7);
      expect(inspection.tensorBytes).toBe((1 << 20) + 56);
      expect(inspection.format).toBe(backend.name);
      if (before !== undefined && after !== undefined) {
        expect(after - before, 'inspect read the tensor bytes').toBeLessThan(1 << 19);
      }
      expect(isMapped(file('inspect')), 'inspect mapped the file').toBe(false);
    });

    it('recognises its own files and nothing else', async () => {
      await backend.save(file('detect'), { w: randomTensor('F32', [8]) });
      const head = readFileSync(file('detect')).subarray(0, DETECT_BYTES);
      expect(backend.detect(new Uint8Array(head))).toBe(true);
      expect(backend.detect(new Uint8Array(0))).toBe(false);
      expect(backend.detect(new Uint8Array(Buffer.from('just some text, not a checkpoint at all')))).toBe(false);
    });

    it('refuses a missing file with CKPT_NOT_FOUND', async () => {
      await expect(backend.load(file('never-written'))).rejects.toMatchObject({ code: 'CKPT_NOT_FOUND' });
      await expect(backend.inspect(file('never-written'))).rejects.toMatchObject({ code: 'CKPT_NOT_FOUND' });
    });

    it('refuses truncated files with a typed error', async () => {
      await backend.save(file('whole'), { w: randomTensor('F32', [32, 32]), b: randomTensor('I8', [5]) });
      const whole = readFileSync(file('whole'));
      for (const keep of [0, 1, 7, 8, 16, Math.floor(whole.byteLength / 2), whole.byteLength - 1]) {
        writeFileSync(file('truncated'), whole.subarray(0, keep));
        const error = await backend.load(file('truncated')).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, `truncated to ${keep} bytes`).toBeInstanceOf(CkptError);
      }
    });

    it('refuses corrupted files with a typed error', async () => {
      await backend.save(file('good'), { w: randomTensor('F32', [32, 32]) });
      const good = readFileSync(file('good'));
      const corruptions: Array<[string, Buffer]> = [
        ['random bytes', randomBytes(good.byteLength)],
        ['zeroed start', Buffer.concat([Buffer.alloc(64), good.subarray(64)])],
        ['0xff start', Buffer.concat([Buffer.alloc(16, 0xff), good.subarray(16)])],
      ];
      for (const [what, bytes] of corruptions) {
        writeFileSync(file('corrupt'), bytes);
        const error = await backend.load(file('corrupt')).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, what).toBeInstanceOf(CkptError);
      }
    });

    it('leaves the previous file intact and no temporaries when a save fails', async () => {
      const state: StateTree = { w: randomTensor('F32', [8]) };
      const first = await backend.save(file('atomic'), state);
      const bad = { w: randomTensor('F32', [8]), broken: (() => 1) as unknown as Tensor };
      await expect(backend.save(file('atomic'), bad)).rejects.toBeInstanceOf(CkptError);
      expect(sha256(readFileSync(file('atomic')))).toBe(first.sha256);
      expect(temporaries(dir)).toEqual([]);
    });

    const isRoot = process.getuid?.() === 0;
    it.skipIf(!isRoot)('on a full disk, fails typed and keeps the previous file (needs root for a tmpfs)', async () => {
      const mount = join(dir, 'tiny');
      mkdirSync(mount, { recursive: true });
      expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]).status).toBe(0);
      try {
        const target = join(mount, `full${extension}`);
        const first = await backend.save(target, { w: randomTensor('F32', [16]) });
        const error = await backend.save(target, { w: randomTensor('F32', [1024, 1024]) }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(CkptError);
        expect((error as CkptError).code).toBe('CKPT_NO_SPACE');
        expect(sha256(readFileSync(target))).toBe(first.sha256);
        expect(temporaries(mount)).toEqual([]);
      } finally {
        spawnSync('umount', [mount]);
      }
    });

    const big = options.bigTensors ?? process.env.CKPT_TEST_BIG === '1';
    it.skipIf(!big)('round-trips a tensor over 2 GiB (opt-in: CKPT_TEST_BIG=1)', async () => {
      const size = 2 ** 31 + 64;
      const data = new Uint8Array(size);
      for (let i = 0; i < size; i += 4096) data[i] = i % 251;
      const state: StateTree = { big: tensor('U8', [size], data) };
      const saved = await backend.save(file('big'), state, { fsync: false });
      expect(saved.size).toBeGreaterThan(size);
      const loaded = (await backend.load(file('big'))).state.big;
      expect(isTensor(loaded)).toBe(true);
      const view = (loaded as Tensor).data;
      expect(view.byteLength).toBe(size);
      for (const i of [0, 4096, size - 64, 2 ** 31]) expect(view[i]).toBe(data[i]);
      rmSync(file('big'));
      expect(existsSync(file('big'))).toBe(false);
    });
  });
}
