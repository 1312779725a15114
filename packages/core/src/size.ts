/**
 * Sizes as people write them: `5GB` (decimal, as transformers reads shard
 * sizes), `2GiB` (binary), `500M`, `1024` (bytes). One parser for every
 * option and flag that takes a size.
 */
import { InvalidArgumentError, shown } from './errors.js';

const POWERS = ['', 'k', 'm', 'g', 't'];

/** Bytes from a number or a size string; zero only with `allowZero`. */
export function parseSize(size: number | string, options: { allowZero?: boolean; what?: string } = {}): number {
  const what = options.what ?? 'a size';
  const fail = (found: string) =>
    new InvalidArgumentError(`cannot read ${found} as ${what}`, {
      expected: 'bytes, or a number with B, KB, MB, GB, TB (decimal) or KiB, MiB, GiB, TiB (binary)',
      found,
    });
  let bytes: number;
  if (typeof size === 'number') {
    bytes = size;
  } else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i)?)?b?\s*$/i.exec(size);
    if (!match) throw fail(JSON.stringify(size));
    const power = POWERS.indexOf((match[2] ?? '').toLowerCase());
    bytes = Math.floor(Number(match[1]) * (match[3] ? 1024 : 1000) ** power);
  }
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw fail(shown(size));
  if (bytes === 0 && !options.allowZero) {
    throw new InvalidArgumentError(`${what} must be positive, got ${JSON.stringify(size)}`, { found: String(size) });
  }
  return bytes;
}
