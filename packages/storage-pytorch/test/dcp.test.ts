import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ConflictError,
  convertCheckpoint,
  FormatError,
  isTensor,
  NotFoundError,
  type StateValue,
  StorageRegistry,
  type Tensor,
  tensor,
  UnsupportedError,
} from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';
import { beforeAll, describe, expect, it } from 'vitest';
import { requirePythonModules, runPython, runPythonFile, skipPython } from '../../../tools/testing/python.js';
import { DcpShard, dcp, openDcp, saveDcp, UnsafePickleError } from '../src/index.js';
// @ts-expect-error: a plain script shared with the rank child processes
import { dcpFullState } from './support/dcp-state.mjs';

const root = mkdtempSync(join(tmpdir(), 'ckpt-dcp-'));
let cases = 0;
const folder = () => join(mkdtempSync(join(root, `case-${++cases}-`)), 'checkpoint');
const script = fileURLToPath(new URL('./python/dcp_compat.py', import.meta.url));
const child = fileURLToPath(new URL('./support/dcp-rank-child.mjs', import.meta.url));

type Description = { dtype: string; shape: number[]; sha256: string } | StateValue;

/** Tensors as the Python side describes them: dtype, shape and the SHA-256 of their bytes. */
function describe_(value: unknown): unknown {
  if (isTensor(value as StateValue)) {
    const t = value as Tensor;
    return { dtype: t.dtype, shape: [...t.shape], sha256: createHash('sha256').update(t.data).digest('hex') };
  }
  if (Array.isArray(value)) return value.map(describe_);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, describe_(v)]));
  return value;
}

/** The tensors of a described tree as `{ dotted.name: [dtype, shape] }`, for the Python loader's template. */
function templateOf(described: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}) {
  for (const [key, value] of Object.entries(described)) {
    const v = value as { sha256?: string; dtype?: string; shape?: number[] };
    if (v && typeof v === 'object' && typeof v.sha256 === 'string') out[prefix + key] = [v.dtype, v.shape];
    else if (v && typeof v === 'object' && !Array.isArray(v))
      templateOf(v as Record<string, unknown>, `${prefix}${key}.`, out);
  }
  return out;
}

function pythonJson(args: string[], input?: unknown): Record<string, Description> {
  const run = runPythonFile(script, args, input === undefined ? undefined : JSON.stringify(input));
  return JSON.parse(run.stdout.trim().split('\n').at(-1) as string);
}

function runRank(dir: string, rank: number, worldSize: number, saveId: string, timeoutMs: number) {
  return new Promise<{ committed?: boolean; committer?: boolean; error?: string; message?: string }>(
    (resolve, reject) => {
      const proc = spawn(process.execPath, [child, dir, String(rank), String(worldSize), saveId, String(timeoutMs)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      proc.stdout.on('data', (d) => {
        out += d;
      });
      proc.on('error', reject);
      proc.on('exit', () => resolve(JSON.parse(out.trim())));
    },
  );
}

const f32 = (shape: number[], values: number[]) =>
  tensor('F32', shape, new Uint8Array(new Float32Array(values).buffer));

describe.skipIf(skipPython)('torch.distributed.checkpoint: what torch wrote', () => {
  let written: string;
  let expected: Record<string, Description>;
  beforeAll(() => {
    requirePythonModules(['torch']);
    written = folder();
    expected = pythonJson(['save', written, '2']);
  }, 120_000);

  it('reads a checkpoint torch saved from 2 ranks: row- and column-sharded DTensors, a replicated bf16 tensor, nested dicts, a list, plain values', () => {
    const checkpoint = openDcp(written);
    try {
      expect(checkpoint.keys()).toContain('optim.state.0.exp_avg');
      const emb = checkpoint.metadata.entries.get('model.emb');
      expect(emb?.kind === 'tensor' && emb.chunks.length).toBe(2);
      expect(describe_(checkpoint.load())).toEqual(expected);
      expect(Object.getPrototypeOf(checkpoint.load())).toBe(null);
    } finally {
      checkpoint.close();
    }
  });

  it('reads any region of a tensor from the chunks that hold it, as a rank of another sharding would', () => {
    const checkpoint = openDcp(join(written, '.metadata'));
    try {
      const whole = checkpoint.tensor('model.w');
      const rows = new Float32Array(whole.data.slice().buffer);
      const region = checkpoint.tensor('model.w', { offsets: [4, 1], sizes: [5, 3] }); // crosses the two ranks' rows
      const want: number[] = [];
      for (let r = 4; r < 9; r++) for (let c = 1; c < 4; c++) want.push(rows[r * 5 + c] as number);
      expect([...new Float32Array(region.data.slice().buffer)]).toEqual(want);
      expect(region.shape).toEqual([5, 3]);
      expect(() => checkpoint.tensor('model.w', { offsets: [10, 0], sizes: [3, 5] })).toThrow(/not inside its shape/);
      expect(() => checkpoint.tensor('missing')).toThrow(NotFoundError);
      expect(() => checkpoint.value('model.w')).toThrow(/is a tensor/);
    } finally {
      checkpoint.close();
    }
  });

  it('converts it to safetensors, whole and sharded, which safetensors in Python reads back', async () => {
    const registry = new StorageRegistry([safetensors, dcp]);
    const out = join(folder(), '..', 'model.safetensors');
    const whole = await convertCheckpoint(written, out, { registry });
    expect(whole.source.format).toBe('dcp');
    const shardedOut = join(folder(), '..', 'model.safetensors');
    const sharded = await convertCheckpoint(written, shardedOut, { registry, save: { maxShardSize: 400 } });
    expect(sharded.files.length).toBeGreaterThan(2);
    const check = `
import hashlib, json, sys, glob, os
from safetensors.torch import load_file
seen = {}
for path in sys.argv[1:]:
    for name, t in load_file(path).items():
        seen[name] = hashlib.sha256(t.contiguous().view(-1).view(__import__('torch').uint8).numpy().tobytes()).hexdigest()
print(json.dumps(seen))`;
    const shardFiles = sharded.files.map((f) => f.path).filter((p) => p.endsWith('.safetensors'));
    for (const files of [[out], shardFiles]) {
      const seen = JSON.parse(runPython(check, files).stdout);
      const model = expected.model as Record<string, { sha256: string }>;
      expect(seen['model.w']).toBe(model.w?.sha256);
      expect(seen['model.emb']).toBe(model.emb?.sha256);
      expect(Object.keys(seen)).toContain('optim.state.0.exp_avg');
    }
  });
});

describe.skipIf(skipPython)('torch.distributed.checkpoint: what ckpt writes', () => {
  beforeAll(() => requirePythonModules(['torch']));

  it('writes from one process a checkpoint torch loads (dcp.load into a template)', async () => {
    const dir = folder();
    const state = dcpFullState();
    const result = await saveDcp(dir, state, { fsync: false });
    expect(result).toMatchObject({ committed: true, committer: true });
    expect(readdirSync(dir).sort()).toEqual(['.ckpt-dcp-rank-0-of-1.json', '.metadata', '__0_0.distcp']);
    const described = describe_(state) as Record<string, unknown>;
    const seen = pythonJson(['load', dir, '1'], templateOf(described));
    expect(seen.model).toEqual(described.model);
    expect(seen).toMatchObject({ step: 42, note: 'hello', history: [1, 2, 3] });
    // And ckpt reads its own.
    expect(describe_(openDcp(dir).load())).toEqual(described);
  });

  it('writes from 3 processes with no coordinator, and torch loads it resharded onto 2 ranks', async () => {
    const dir = folder();
    const results = await Promise.all([0, 1, 2].map((rank) => runRank(dir, rank, 3, 'run-1/step-42', 60_000)));
    expect(results.every((r) => r.committed === true)).toBe(true);
    expect(results.filter((r) => r.committer)).toHaveLength(1);
    const described = describe_(dcpFullState()) as Record<string, unknown>;
    const seen = pythonJson(['load', dir, '2'], templateOf(described));
    expect(seen.model).toEqual(described.model);
    const table = openDcp(dir).metadata.entries.get('model.table');
    expect(table?.kind === 'tensor' && table.chunks.map((c) => c.offsets)).toEqual([
      [0, 0],
      [0, 2],
      [0, 4],
    ]);
  }, 120_000);
});

describe('torch.distributed.checkpoint: ranks that do not finish', () => {
  it('a rank that never writes leaves no checkpoint: the others give up naming it, and nothing can be opened', async () => {
    const dir = folder();
    const results = await Promise.all([0, 1].map((rank) => runRank(dir, rank, 3, '', 400)));
    for (const result of results) {
      expect(result.error).toBe('CKPT_CONFLICT');
      expect(result.message).toMatch(/no part from rank 2/);
    }
    expect(existsSync(join(dir, '.metadata'))).toBe(false);
    expect(() => openDcp(dir)).toThrow(NotFoundError);
    // The missing rank arrives late: it completes the checkpoint on its own.
    expect(await runRank(dir, 2, 3, '', 400)).toEqual({ committed: true, committer: true });
    expect(openDcp(dir).keys()).toContain('model.w');
  }, 60_000);

  it('ranks that disagree on a tensor fail together, and nothing is published', async () => {
    const dir = folder();
    const first = saveDcp(
      dir,
      { w: new DcpShard(f32([2, 2], [1, 2, 3, 4]), { offsets: [0, 0], shape: [4, 2] }) },
      {
        rank: 0,
        worldSize: 2,
        timeoutMs: 5_000,
        fsync: false,
      },
    );
    const second = saveDcp(
      dir,
      { w: new DcpShard(f32([2, 3], [1, 2, 3, 4, 5, 6]), { offsets: [2, 0], shape: [4, 3] }) },
      {
        rank: 1,
        worldSize: 2,
        timeoutMs: 5_000,
        fsync: false,
      },
    );
    const settled = await Promise.allSettled([first, second]);
    for (const outcome of settled) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    }
    expect(existsSync(join(dir, '.metadata'))).toBe(false);
  });

  it('ranks whose parts leave a hole fail, and a part from another attempt is never mixed in', async () => {
    const holes = folder();
    const part = (rank: number, offset: number) =>
      saveDcp(
        holes,
        { w: new DcpShard(f32([1, 2], [1, 2]), { offsets: [offset, 0], shape: [3, 2] }) },
        {
          rank,
          worldSize: 2,
          fsync: false,
          timeoutMs: 2_000,
        },
      );
    const outcomes = await Promise.allSettled([part(0, 0), part(1, 2)]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(String((outcomes[0] as PromiseRejectedResult).reason.message)).toMatch(/cover 4 of its 6 elements/);

    const mixed = folder();
    const write = (rank: number, saveId: string, timeoutMs: number) =>
      saveDcp(mixed, { w: f32([1], [rank]) }, { rank, worldSize: 2, saveId, timeoutMs, fsync: false });
    await expect(write(0, 'attempt-1', 0)).resolves.toMatchObject({ committed: false });
    await expect(write(1, 'attempt-2', 200)).rejects.toThrow(/not completed/);
    expect(existsSync(join(mixed, '.metadata'))).toBe(false);
    await expect(write(0, 'attempt-2', 0)).resolves.toMatchObject({ committed: true, committer: true });
  });

  it('refuses to write over a checkpoint, and bad ranks, world sizes and shards', async () => {
    const dir = folder();
    await saveDcp(dir, { w: f32([1], [1]) }, { fsync: false });
    await expect(saveDcp(dir, { w: f32([1], [2]) }, { fsync: false })).rejects.toThrow(ConflictError);
    await expect(saveDcp(folder(), {}, { rank: 2, worldSize: 2 })).rejects.toThrow(/rank must be/);
    await expect(saveDcp(folder(), {}, { worldSize: 0 })).rejects.toThrow(/worldSize/);
    expect(() => new DcpShard(f32([2], [1, 2]), { offsets: [1], shape: [2] })).toThrow(/does not fit/);
  });
});

describe.skipIf(skipPython)('torch.distributed.checkpoint: hostile folders', () => {
  const pwned = join(root, 'pwned');
  const made = join(root, 'hostile');
  /** A fresh copy of the checkpoint made hostile in the way `kind` names (dcp_compat.py HOSTILE). */
  const hostile = (kind: string) => {
    const dir = folder();
    cpSync(join(made, kind), dir, { recursive: true });
    return dir;
  };
  beforeAll(() => {
    requirePythonModules(['torch']);
    runPythonFile(script, ['hostile', made], undefined, { CKPT_PWNED: pwned });
  }, 120_000);

  it('a .metadata pickle that would run code is refused, and nothing runs', () => {
    const dir = hostile('metadata-runs-code');
    expect(() => openDcp(dir)).toThrow(UnsafePickleError);
    expect(() => openDcp(dir)).toThrow(/posix.system|os.system/);
    expect(existsSync(pwned)).toBe(false);
  });

  it('a stored value that would run code (torch loads values with weights_only=False) is refused, and nothing runs', () => {
    const checkpoint = openDcp(hostile('value-runs-code'));
    expect(checkpoint.tensor('w').shape).toEqual([4, 3]);
    expect(() => checkpoint.value('step')).toThrow(UnsafePickleError);
    expect(() => checkpoint.load()).toThrow(UnsafePickleError);
    expect(existsSync(pwned)).toBe(false);
  });

  it('a stored value holding a numpy array is refused unless numpy is allowed, as for a .pt file', () => {
    const dir = hostile('numpy-value');
    expect(() => openDcp(dir).value('step')).toThrow(UnsafePickleError);
    const allowed = openDcp(dir, { allowGlobals: ['numpy'] }).value('step') as Tensor;
    expect([...new Int32Array(allowed.data.slice().buffer)]).toEqual([0, 1, 2, 3]);
  });

  it('a storage file outside the folder, a transform, overlapping chunks, a hole and a range past the end are refused', () => {
    expect(() => openDcp(hostile('path-escapes'))).toThrow(/not a file in the checkpoint folder/);
    expect(() => openDcp(hostile('transform'))).toThrow(UnsupportedError);
    expect(() => openDcp(hostile('overlap')).tensor('w')).toThrow(/overlap/);
    expect(() => openDcp(hostile('hole')).tensor('w')).toThrow(/parts of the tensor are missing/);
    expect(() => openDcp(hostile('past-end')).tensor('w')).toThrow(/past the end/);
  });

  it('links are not followed, and a file that is not DCP metadata is refused', () => {
    const dir = hostile('past-end');
    const linked = hostile('plain');
    expect(openDcp(linked).tensor('w').shape).toEqual([4, 3]);
    rmSync(join(linked, '__0_0.distcp'));
    symlinkSync(join(dir, '__0_0.distcp'), join(linked, '__0_0.distcp'));
    expect(() => openDcp(linked).tensor('w')).toThrow(/not a regular file/);
    rmSync(join(linked, '.metadata'));
    symlinkSync(join(dir, '.metadata'), join(linked, '.metadata'));
    expect(() => openDcp(linked)).toThrow(FormatError);
    const notMetadata = hostile('plain');
    writeFileSync(join(notMetadata, '.metadata'), readFileSync(join(notMetadata, '__0_0.distcp')));
    expect(() => openDcp(notMetadata)).toThrow(FormatError);
  });
});
