import fc from 'fast-check';

/**
 * Values a careless reader of JSON trips on, as JSON text (parsed afresh for
 * each use): objects whose `toString` is data, prototype keys, wrong types.
 */
const HOSTILE_JSON: readonly string[] = [
  '{"toString":1}',
  '{"valueOf":{},"toString":[]}',
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '[]',
  '{}',
  'null',
  '""',
  '-1',
  '1e308',
  String(2 ** 53 + 2),
  '"../../etc/passwd"',
  JSON.stringify('x'.repeat(5000)),
];

/**
 * Variants of a JSON document (its text): up to three of its values, keys'
 * values included, replaced by hostile ones. Where byte mutations mostly
 * break the syntax, these keep it and attack the reader's checks.
 */
export function hostileJsonVariants(seed: string): fc.Arbitrary<string> {
  const document: unknown = JSON.parse(seed);
  const paths: Array<Array<string | number>> = [];
  const stack: Array<[unknown, Array<string | number>]> = [[document, []]];
  for (let item = stack.pop(); item && paths.length < 10_000; item = stack.pop()) {
    const [value, path] = item;
    paths.push(path);
    if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) stack.push([v, [...path, i]]);
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) stack.push([v, [...path, k]]);
    }
  }
  const replacement = fc.tuple(fc.constantFrom(...paths), fc.constantFrom(...HOSTILE_JSON));
  return fc.array(replacement, { minLength: 1, maxLength: 3 }).map((replacements) => {
    let out: unknown = JSON.parse(seed);
    for (const [path, value] of replacements) {
      const fresh: unknown = JSON.parse(value);
      if (path.length === 0) {
        out = fresh;
        continue;
      }
      let parent = out as Record<string | number, unknown>;
      for (const step of path.slice(0, -1)) {
        const next = parent?.[step];
        if (next === null || typeof next !== 'object') break;
        parent = next as Record<string | number, unknown>;
      }
      if (parent !== null && typeof parent === 'object') {
        Object.defineProperty(parent, path[path.length - 1] as string | number, {
          value: fresh,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
    }
    return JSON.stringify(out);
  });
}
