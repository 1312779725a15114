import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { byteLengthOf, type DType, dtypeInfo, type StateTree, type Tensor, tensor } from '@ckpt/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { requirePythonModules, runPythonFile, skipPython } from '../../../tools/testing/python.js';
import { SAFETENSORS_DTYPES, safetensors } from '../src/index.js';

// Compatibility with the real Python safetensors (and numpy) in both directions.
const script = fileURLToPath(new URL('./python/compat.py', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ckpt-st-python-'));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Python's serialize_file cannot write the F6 types; its reader handles them. */
const PYTHON_WRITES = SAFETENSORS_DTYPES.filter((d) => !d.startsWith('F6'));

interface PythonView {
  metadata: Record<string, string>;
  tensors: Record<
    string,
    { dtype: string; shape: number[]; sha256: string; numpy_sha256?: string; numpy_shape?: number[] }
  >;
}

function randomShape(dtype: DType, rng: () => number): number[] {
  const rank = Math.floor(rng() * 5);
  const shape = Array.from({ length: rank }, () => Math.floor(rng() * 7));
  if (dtypeInfo(dtype).bits % 8 !== 0) {
    // Sub-byte types need whole bytes: make the element count a multiple of 4 (F4) or 4 (F6: 4 x 6 bits = 3 bytes).
    if (shape.length === 0) return [4];
    shape[shape.length - 1] = 4 * Math.max(1, Math.floor(rng() * 3));
  }
  return shape;
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const names = ['weight', 'layers.0.attn.q_proj.weight', 'émbed', '数据', 'a b', 'x"y', 'tab\tname'];

function randomState(seed: number, dtypes: readonly DType[]): StateTree {
  const rng = seeded(seed);
  const count = 1 + Math.floor(rng() * 8);
  const state: StateTree = {};
  for (let i = 0; i < count; i++) {
    const dtype = dtypes[Math.floor(rng() * dtypes.length)] as DType;
    const shape = randomShape(dtype, rng);
    state[`${names[i % names.length]}.${i}`] = tensor(
      dtype,
      shape,
      new Uint8Array(randomBytes(byteLengthOf(dtype, shape))),
    );
  }
  return state;
}

describe.skipIf(skipPython)('against Python safetensors', () => {
  beforeAll(() => requirePythonModules(['safetensors', 'numpy']));

  it('reads what ckpt writes, every dtype, with identical bytes, dtypes, shapes and metadata', async () => {
    const files: Array<[string, StateTree]> = [];
    const everyDtype: StateTree = Object.fromEntries(
      SAFETENSORS_DTYPES.map((d) => [d, tensor(d, [2, 4], new Uint8Array(randomBytes(byteLengthOf(d, [2, 4]))))]),
    );
    files.push([join(dir, 'every-dtype.safetensors'), everyDtype]);
    for (let seed = 1; seed <= 40; seed++)
      files.push([join(dir, `random-${seed}.safetensors`), randomState(seed, SAFETENSORS_DTYPES)]);
    for (const [path, state] of files)
      await safetensors.save(path, state, { metadata: { source: 'ckpt' }, fsync: false });

    const seen = JSON.parse(runPythonFile(script, ['read', ...files.map(([p]) => p)]).stdout) as Record<
      string,
      PythonView
    >;
    for (const [path, state] of files) {
      const view = seen[path] as PythonView;
      expect(view.metadata).toEqual({ format: 'pt', source: 'ckpt' });
      expect(Object.keys(view.tensors).sort()).toEqual(Object.keys(state).sort());
      for (const [name, value] of Object.entries(state)) {
        const t = value as Tensor;
        const py = view.tensors[name];
        expect(py, `${path} ${name}`).toMatchObject({ dtype: t.dtype, shape: t.shape, sha256: sha256(t.data) });
        if (py?.numpy_sha256) {
          expect(py.numpy_sha256).toBe(sha256(t.data));
          expect(py.numpy_shape).toEqual(t.shape);
        }
      }
    }
  });

  it('writes the very same bytes as Python serialize_file for the same tensors', async () => {
    for (let seed = 100; seed < 120; seed++) {
      const ours = join(dir, `ours-${seed}.safetensors`);
      const theirs = join(dir, `theirs-${seed}.safetensors`);
      await safetensors.save(ours, randomState(seed, PYTHON_WRITES), { fsync: false });
      runPythonFile(script, ['rewrite', ours, theirs]);
      expect(readFileSync(ours).equals(readFileSync(theirs)), `seed ${seed}`).toBe(true);
    }
  });

  it('loads what Python writes, every dtype, many random shapes', async () => {
    const files = Array.from({ length: 40 }, (_, i) => {
      const rng = seeded(1000 + i);
      const tensors = Array.from({ length: 1 + Math.floor(rng() * 6) }, (_, k) => {
        const dtype = PYTHON_WRITES[(i * 7 + k) % PYTHON_WRITES.length] as DType;
        const shape = randomShape(dtype, rng);
        return { name: `${names[k % names.length]}.${k}`, dtype, shape, bytes: byteLengthOf(dtype, shape) };
      });
      return { path: join(dir, `python-${i}.safetensors`), seed: i, metadata: { epoch: String(i) }, tensors };
    });
    const digests = JSON.parse(runPythonFile(script, ['write'], JSON.stringify({ files })).stdout) as Record<
      string,
      Record<string, string>
    >;
    for (const file of files) {
      const loaded = await safetensors.load(file.path);
      expect(loaded.metadata).toEqual({ epoch: file.metadata.epoch });
      for (const t of file.tensors) {
        const got = loaded.state[t.name] as Tensor;
        expect(got, `${file.path} ${t.name}`).toMatchObject({ dtype: t.dtype, shape: t.shape });
        expect(sha256(got.data)).toBe(digests[file.path]?.[t.name]);
      }
    }
  });
});
