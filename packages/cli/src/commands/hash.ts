/**
 * `ckpt hash`: SHA-256 of files in parallel, printed exactly as `sha256sum`
 * prints them, and `--check` reading such a list back, as `sha256sum -c`.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '@ckpt/core';
import { sha256Files } from '@ckpt/native';
import type { Context } from '../context.js';
import { hashWithProgress } from './files.js';

/** sha256sum's escaping: a name with a backslash or newline gets a leading `\` and escapes. */
export function sumLine(digest: string, name: string): string {
  if (!/[\\\n\r]/.test(name)) return `${digest}  ${name}`;
  const escaped = name.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
  return `\\${digest}  ${escaped}`;
}

/** A name as `sha256sum -c` prints it: one with a newline gets a leading `\` and escapes, so each result stays one line. */
export function checkedName(name: string): string {
  if (!name.includes('\n')) return name;
  return `\\${name.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`;
}

/** One line of a SUMS file: `<hex>  <name>`, `<hex> *<name>`, or the escaped form. */
export function parseSumLine(line: string): { digest: string; name: string } | undefined {
  const escaped = line.startsWith('\\');
  const match = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(escaped ? line.slice(1) : line);
  if (!match) return undefined;
  let name = match[2] as string;
  if (escaped) name = name.replace(/\\(\\|n|r)/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : '\\'));
  return { digest: (match[1] as string).toLowerCase(), name };
}

export async function hashCommand(ctx: Context, files: string[]): Promise<boolean> {
  if (files.length === 0) throw new InvalidArgumentError('name at least one file to hash');
  for (const file of files) {
    if (!existsSync(file)) throw new NotFoundError(`${file}: no such file`, { path: resolve(file) });
    if (statSync(file).isDirectory())
      throw new InvalidArgumentError(`${file}: is a directory`, { path: resolve(file) });
  }
  const digests = await hashWithProgress(ctx, files);
  ctx.out.result(
    files.map((path, i) => ({ path, sha256: digests[i] })),
    () => {
      for (const [i, path] of files.entries()) ctx.out.line(sumLine(digests[i] as string, path));
    },
  );
  return true;
}

type CheckStatus = 'OK' | 'FAILED' | 'MISSING';

export async function checkCommand(ctx: Context, sumsFile: string, options: { quiet?: boolean }): Promise<boolean> {
  if (!existsSync(sumsFile)) throw new NotFoundError(`${sumsFile}: no such file`, { path: resolve(sumsFile) });
  const lines = readFileSync(sumsFile, 'utf8').split('\n');
  const entries: Array<{ digest: string; name: string }> = [];
  let malformed = 0;
  for (const line of lines) {
    if (line.trim() === '') continue;
    const entry = parseSumLine(line.replace(/\r$/, ''));
    if (entry) entries.push(entry);
    else malformed++;
  }
  if (entries.length === 0) {
    throw new InvalidArgumentError(`${sumsFile}: no properly formatted SHA-256 checksum lines found`, {
      path: resolve(sumsFile),
    });
  }
  // Names are relative to the working folder, as sha256sum takes them.
  const present = entries.filter((e) => existsSync(e.name) && statSync(e.name).isFile());
  const digests = await ctx.out.withProgress('checking', (onProgress) =>
    sha256Files(
      present.map((e) => e.name),
      { onProgress },
    ),
  );
  const actual = new Map(present.map((e, i) => [e, digests[i]]));
  const results = entries.map((e) => {
    const found = actual.get(e);
    const status: CheckStatus = found === undefined ? 'MISSING' : found === e.digest ? 'OK' : 'FAILED';
    return { path: e.name, expected: e.digest, actual: found ?? null, status };
  });
  const failed = results.filter((r) => r.status === 'FAILED').length;
  const missing = results.filter((r) => r.status === 'MISSING').length;
  ctx.out.result({ file: sumsFile, results, failed, missing, malformed }, () => {
    const { c } = ctx.out;
    for (const r of results) {
      if (r.status === 'OK' && options.quiet) continue;
      const label =
        r.status === 'OK' ? c.green('OK') : r.status === 'FAILED' ? c.red('FAILED') : c.red('FAILED open or read');
      ctx.out.line(`${checkedName(r.path)}: ${label}`);
    }
    if (malformed > 0) ctx.out.warn(`${malformed} line${malformed > 1 ? 's are' : ' is'} improperly formatted`);
    if (missing > 0) ctx.out.warn(`${missing} listed file${missing > 1 ? 's' : ''} could not be read`);
    if (failed > 0) ctx.out.warn(`${failed} computed checksum${failed > 1 ? 's' : ''} did NOT match`);
  });
  return failed === 0 && missing === 0;
}
