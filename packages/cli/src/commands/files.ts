/** Commands on checkpoint files: inspect, convert, diff, and verify of a single file. */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  CkptError,
  compareTensors,
  convertCheckpoint,
  flattenTensors,
  InvalidArgumentError,
  NotFoundError,
} from '@ckpt/core';
import { sha256Files } from '@ckpt/native';
import { parseSize } from '@ckpt/storage-safetensors';
import type { Context } from '../context.js';
import { formatBytes, formatCount } from '../output.js';

function mustExist(path: string): string {
  const full = resolve(path);
  if (!existsSync(full)) throw new NotFoundError(`no such file: ${path}`, { path: full });
  return full;
}

/** SHA-256 of every file, with one progress bar over all of them. */
export async function hashWithProgress(ctx: Context, files: string[], label = 'hashing'): Promise<string[]> {
  return ctx.out.withProgress(label, (onProgress) => sha256Files(files, { onProgress }));
}

/** Tensors `inspect` lists in text unless --limit says otherwise. */
const DEFAULT_TENSOR_ROWS = 1000;

export async function inspectCommand(
  ctx: Context,
  file: string,
  options: { digest?: boolean; limit?: string },
): Promise<void> {
  // Text shows the first 1,000 tensors unless asked (a file may list a million); --json lists them all.
  const limit = options.limit === undefined ? DEFAULT_TENSOR_ROWS : Number(options.limit);
  if (!Number.isInteger(limit) || limit < 0) throw new InvalidArgumentError('--limit must be a whole number >= 0');
  const path = mustExist(file);
  const backend = await ctx.registry.resolve(path);
  const inspection = await backend.inspect(path);
  const digests = options.digest ? await hashWithProgress(ctx, inspection.files) : undefined;
  const files = inspection.files.map((f, i) => ({
    path: f,
    size: statSync(f).size,
    ...(digests ? { sha256: digests[i] } : {}),
  }));
  const result = { ...inspection, files };
  ctx.out.result(result, () => {
    const { c } = ctx.out;
    ctx.out.line(`${c.bold(path)}`);
    ctx.out.line(`  format      ${inspection.format}`);
    ctx.out.line(`  tensors     ${formatCount(inspection.tensors.length)}`);
    ctx.out.line(`  parameters  ${formatCount(inspection.parameterCount)}`);
    ctx.out.line(`  tensor data ${formatBytes(inspection.tensorBytes)}`);
    for (const f of files) {
      ctx.out.line(`  file        ${f.path} (${formatBytes(f.size)})${f.sha256 ? `  sha256 ${f.sha256}` : ''}`);
    }
    const metadata = Object.entries(inspection.metadata);
    if (metadata.length > 0) {
      ctx.out.line(c.bold('metadata'));
      for (const [key, value] of metadata)
        ctx.out.line(`  ${key}: ${value.length > 120 ? `${value.slice(0, 117)}...` : value}`);
    }
    const shown = inspection.tensors.slice(0, limit);
    ctx.out.line();
    ctx.out.table(
      ['tensor', 'dtype', 'shape', 'size'],
      shown.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, formatBytes(t.byteLength)]),
    );
    if (shown.length < inspection.tensors.length) {
      ctx.out.line(c.dim(`... and ${inspection.tensors.length - shown.length} more (--limit to show more)`));
    }
  });
}

/** A single checkpoint file: every tensor readable within the file, and its digest (checked against `--sha256`). */
export async function verifyFile(ctx: Context, file: string, options: { sha256?: string }): Promise<boolean> {
  const path = mustExist(file);
  const backend = await ctx.registry.resolve(path);
  let problem: string | undefined;
  let code: string | undefined;
  let tensors = 0;
  try {
    const loaded = await backend.load(path);
    tensors = flattenTensors(loaded.state).length;
  } catch (error) {
    if (!(error instanceof CkptError)) throw error;
    problem = error.message;
    code = error.code;
  }
  const inspection = problem ? undefined : await backend.inspect(path);
  const files = inspection?.files ?? [path];
  const digests = await hashWithProgress(ctx, files);
  const expected = options.sha256?.toLowerCase();
  if (!problem && expected && digests[0] !== expected) {
    problem = `SHA-256 ${digests[0]} does not match the expected ${expected}`;
  }
  const ok = problem === undefined;
  ctx.out.result(
    {
      path,
      format: backend.name,
      ok,
      tensors,
      files: files.map((f, i) => ({ path: f, sha256: digests[i] })),
      problem,
      ...(code ? { code } : {}),
    },
    () => {
      const { c } = ctx.out;
      if (ok) ctx.out.line(`${c.green('OK')}  ${path}  (${backend.name}, ${tensors} tensors, sha256 ${digests[0]})`);
      else ctx.out.line(`${c.red('FAILED')}  ${path}: ${problem}${code ? ` [${code}]` : ''}`);
    },
  );
  return ok;
}

export async function convertCommand(
  ctx: Context,
  input: string,
  output: string,
  options: { shardSize?: string; from?: string; to?: string; force?: boolean },
): Promise<void> {
  const source = mustExist(input);
  const destination = resolve(output);
  if (existsSync(destination) && !options.force) {
    throw new InvalidArgumentError(`${output} exists: pass --force to replace it`, { path: destination });
  }
  mkdirSync(dirname(destination), { recursive: true });
  const save: Record<string, unknown> = {};
  if (options.shardSize) save.maxShardSize = parseSize(options.shardSize);
  const result = await ctx.out.withProgress('converting', (onProgress) =>
    convertCheckpoint(source, destination, {
      registry: ctx.registry,
      ...(options.from ? { from: options.from } : {}),
      ...(options.to ? { to: options.to } : {}),
      save: { ...save, onProgress },
    }),
  );
  ctx.out.result(result, () => {
    ctx.out.line(
      `${result.source.format} -> ${result.format}: ${result.tensorCount} tensors into ${result.files.length} file(s)`,
    );
    for (const f of result.files) ctx.out.line(`  ${f.path}  ${formatBytes(f.size)}  sha256 ${f.sha256}`);
  });
}

export async function diffCommand(ctx: Context, a: string, b: string, options: { all?: boolean }): Promise<boolean> {
  const [left, right] = [mustExist(a), mustExist(b)];
  const load = async (path: string) => (await ctx.registry.resolve(path)).load(path);
  const [x, y] = await Promise.all([load(left), load(right)]);
  const differences = compareTensors(x.state, y.state);
  const entries = Object.entries(differences);
  const changed = entries.filter(([, d]) => d.status !== 'equal');
  const identical = changed.length === 0;
  ctx.out.result({ a: left, b: right, identical, tensors: differences }, () => {
    const { c } = ctx.out;
    const shown = options.all ? entries : changed;
    if (shown.length > 0) {
      ctx.out.table(
        ['tensor', 'status', 'max |a-b|', 'mean |a-b|', 'detail'],
        shown.map(([name, d]) => [
          name,
          d.status === 'equal' ? c.green(d.status) : c.yellow(d.status),
          d.maxAbsDiff === undefined ? '-' : d.maxAbsDiff.toExponential(3),
          d.meanAbsDiff === undefined ? '-' : d.meanAbsDiff.toExponential(3),
          d.detail ?? '',
        ]),
      );
    }
    ctx.out.line(
      identical
        ? c.green(`identical: ${entries.length} tensors`)
        : `${changed.length} of ${entries.length} tensors differ`,
    );
  });
  return identical;
}
