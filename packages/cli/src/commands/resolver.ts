/** Commands over the resolver: resolve names, download, upload, and manage the cache. */
import { InvalidArgumentError, parseSize } from '@ckpt/core';
import type { Resolver } from '@ckpt/resolver-b2';
import type { Context } from '../context.js';
import { formatBytes } from '../output.js';

async function withResolver<T>(ctx: Context, work: (resolver: Resolver) => Promise<T>): Promise<T> {
  const resolver = await ctx.resolver();
  try {
    return await work(resolver);
  } finally {
    resolver.destroy();
  }
}

/** `resolve` prints where each name is (downloading what is missing); `download` is the same, said plainly. */
export async function resolveCommand(ctx: Context, names: string[], options: { verify?: boolean }): Promise<void> {
  if (names.length === 0) throw new InvalidArgumentError('name at least one checkpoint');
  await withResolver(ctx, async (resolver) => {
    const paths: string[] = [];
    for (const name of names) {
      paths.push(
        await ctx.out.withProgress(name, (onProgress) =>
          resolver.resolve(name, { onProgress, verify: options.verify ?? false }),
        ),
      );
    }
    ctx.out.result(
      names.map((name, i) => ({ name, path: paths[i] })),
      () => {
        for (const path of paths) ctx.out.line(path);
      },
    );
  });
}

export async function uploadCommand(ctx: Context, file: string, key: string | undefined): Promise<void> {
  await withResolver(ctx, async (resolver) => {
    const result = await ctx.out.withProgress('uploading', (onProgress) => resolver.upload(file, key, { onProgress }));
    ctx.out.result(result, () => {
      const where = `s3://${result.bucket}/${result.key}`;
      ctx.out.line(
        result.skipped
          ? `${where} already holds these bytes (sha256 ${result.sha256}): nothing sent`
          : `uploaded ${formatBytes(result.size)} to ${where} (sha256 ${result.sha256})`,
      );
    });
  });
}

export async function cacheListCommand(ctx: Context): Promise<void> {
  await withResolver(ctx, async (resolver) => {
    const entries = await resolver.cache.list();
    const total = entries.reduce((sum, e) => sum + e.size, 0);
    ctx.out.result({ folder: resolver.config.cacheDir, total, entries }, () => {
      if (entries.length === 0) {
        ctx.out.line(`the cache ${resolver.config.cacheDir} is empty`);
        return;
      }
      ctx.out.table(
        ['name', 'size', 'last used', 'source'],
        entries.map((e) => [
          e.name,
          formatBytes(e.size),
          e.lastUsed.toISOString().replace('T', ' ').slice(0, 19),
          e.record?.source ?? '-',
        ]),
      );
      ctx.out.line(`${entries.length} files, ${formatBytes(total)} in ${resolver.config.cacheDir}`);
    });
  });
}

export async function cacheVerifyCommand(ctx: Context): Promise<boolean> {
  return withResolver(ctx, async (resolver) => {
    const results = await resolver.cache.verify();
    const ok = results.every((r) => r.status !== 'corrupted');
    ctx.out.result({ ok, results }, () => {
      const { c } = ctx.out;
      for (const r of results) {
        const label =
          r.status === 'ok' ? c.green('OK') : r.status === 'corrupted' ? c.red('CORRUPTED') : c.yellow('UNKNOWN');
        ctx.out.line(`${label}  ${r.name}`);
      }
      if (results.length === 0) ctx.out.line('the cache is empty');
    });
    return ok;
  });
}

const UNITS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };

/** `30d`, `12h`, `90m`. */
export function parseAge(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([smhdw])$/.exec(text.trim());
  if (!match)
    throw new InvalidArgumentError(`--older-than ${text}: expected a number and a unit (s, m, h, d, w), e.g. 30d`);
  return Number(match[1]) * (UNITS[match[2] as string] as number);
}

export async function cachePruneCommand(
  ctx: Context,
  options: { olderThan?: string; maxSize?: string; dryRun?: boolean },
): Promise<void> {
  if (!options.olderThan && !options.maxSize) {
    throw new InvalidArgumentError('say what to prune: --older-than 30d and/or --max-size 10GB');
  }
  await withResolver(ctx, async (resolver) => {
    const removed = await resolver.cache.prune({
      ...(options.olderThan ? { olderThanMs: parseAge(options.olderThan) } : {}),
      ...(options.maxSize ? { maxBytes: parseSize(options.maxSize, { allowZero: true, what: '--max-size' }) } : {}),
      dryRun: options.dryRun ?? false,
    });
    ctx.out.result({ dryRun: options.dryRun ?? false, removed }, () => {
      const verb = options.dryRun ? 'would remove' : 'removed';
      for (const e of removed) ctx.out.line(`${verb} ${e.name} (${formatBytes(e.size)})`);
      ctx.out.line(`${verb} ${removed.length} files, ${formatBytes(removed.reduce((sum, e) => sum + e.size, 0))}`);
    });
  });
}
