/** Byte mutations of seed files, as a mutation fuzzer makes them, shrinkable to fewer edits. */

import fc from 'fast-check';

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x7fffffff, 0x80000000, 0xffffffff];

/** One edit a mutation fuzzer makes; positions are taken modulo the length, so any edit applies to any input. */
type Edit =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'interesting'; at: number; value: number; width: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'remove'; at: number; length: number }
  | { kind: 'repeat'; at: number; length: number; times: number };

/**
 * Edits aimed at the first `focus` bytes (a header) or the last `tail` bytes
 * (a zip's directory), else anywhere. A negative position counts from the end.
 */
function edit(focus: number, tail: number): fc.Arbitrary<Edit> {
  const at = fc.oneof(
    { arbitrary: fc.nat(Math.max(0, focus - 1)), weight: focus > 0 ? 3 : 0 },
    { arbitrary: fc.integer({ min: -Math.max(1, tail), max: -1 }), weight: tail > 0 ? 3 : 0 },
    { arbitrary: fc.nat(), weight: 1 },
  );
  return fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at, bit: fc.nat(7) }),
    fc.record({ kind: fc.constant('set' as const), at, byte: fc.nat(255) }),
    fc.record({
      kind: fc.constant('interesting' as const),
      at,
      value: fc.constantFrom(...INTERESTING),
      width: fc.constantFrom(1, 2, 4),
    }),
    fc.record({ kind: fc.constant('truncate' as const), at }),
    fc.record({ kind: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('remove' as const), at, length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({
      kind: fc.constant('repeat' as const),
      at,
      length: fc.integer({ min: 1, max: 64 }),
      times: fc.integer({ min: 1, max: 32 }),
    }),
  );
}

/** `seed` with `edits` applied in order. */
export function applyEdits(seed: Uint8Array, edits: readonly Edit[]): Uint8Array {
  let out: Uint8Array = Uint8Array.from(seed);
  for (const e of edits) {
    const n = out.length;
    const at = n === 0 ? 0 : ((e.at % n) + n) % n;
    if (e.kind === 'truncate') out = out.slice(0, at);
    else if (e.kind === 'insert') out = concat(out.subarray(0, at), e.bytes, out.subarray(at));
    else if (n === 0) continue;
    else if (e.kind === 'flip') out[at] = (out[at] as number) ^ (1 << e.bit);
    else if (e.kind === 'set') out[at] = e.byte;
    else if (e.kind === 'interesting') {
      for (let i = 0; i < e.width && at + i < n; i++) out[at + i] = (e.value >>> (8 * i)) & 0xff;
    } else if (e.kind === 'remove') out = concat(out.subarray(0, at), out.subarray(Math.min(n, at + e.length)));
    else {
      const slice = out.slice(at, Math.min(n, at + e.length));
      out = concat(out.subarray(0, at), ...Array.from({ length: e.times }, () => slice), out.subarray(at));
    }
  }
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Mutants of the seed files: one to `maxEdits` edits, shrinking towards fewer edits and an unchanged seed. */
export function mutatedBytes(
  seeds: readonly Uint8Array[],
  options: { focus?: number; tail?: number; maxEdits?: number } = {},
): fc.Arbitrary<Uint8Array> {
  if (seeds.length === 0) throw new Error('mutatedBytes needs at least one seed');
  const edits = fc.array(edit(options.focus ?? 512, options.tail ?? 0), {
    minLength: 1,
    maxLength: options.maxEdits ?? 8,
  });
  return fc.tuple(fc.constantFrom(...seeds), edits).map(([seed, list]) => applyEdits(seed, list));
}
