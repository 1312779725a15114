import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isTensor, type StateValue, type Tensor, Tuple } from '@ckpt/core';
import { expect } from 'vitest';
import { isParameter, PyFloat, pythonInfo, requiresGrad } from '../src/index.js';

/**
 * Checks a value read by ckpt against a fixture manifest's `content`, which
 * encodes what torch returned (see ../../../shared/fixtures/README.md).
 */
export function expectMatchesManifest(value: StateValue | PyFloat, want: unknown, path = '$'): void {
  if (want === null || typeof want !== 'object') {
    expect(value instanceof PyFloat ? value.value : value, path).toBe(want);
    return;
  }
  if (Array.isArray(want)) {
    expect(Array.isArray(value) && !(value instanceof Tuple), `${path} is a list`).toBe(true);
    expect((value as StateValue[]).length, path).toBe(want.length);
    for (const [i, w] of want.entries()) expectMatchesManifest((value as StateValue[])[i], w, `${path}[${i}]`);
    return;
  }
  const m = want as Record<string, unknown>;
  if (m.__tensor__) {
    expect(isTensor(value), `${path} is a tensor`).toBe(true);
    const t = value as Tensor;
    expect(t.dtype, `${path} dtype`).toBe(m.dtype);
    expect(t.shape, `${path} shape`).toEqual(m.shape);
    expect(t.data.byteLength, `${path} nbytes`).toBe(m.nbytes);
    expect(createHash('sha256').update(t.data).digest('hex'), `${path} bytes`).toBe(m.sha256);
    expect(isParameter(t), `${path} is_parameter`).toBe(m.is_parameter);
    expect(requiresGrad(t), `${path} requires_grad`).toBe(m.requires_grad);
    return;
  }
  if ('__int__' in m) {
    expect(BigInt(value as bigint), path).toBe(BigInt(m.__int__ as string));
    return;
  }
  if ('__bytes__' in m) {
    expect(value, `${path} is bytes`).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(value as Uint8Array).toString('hex'), path).toBe(m.__bytes__);
    return;
  }
  if ('__float__' in m) {
    const expected = { nan: Number.NaN, inf: Infinity, '-inf': -Infinity }[m.__float__ as string];
    expect(value, path).toBe(expected);
    return;
  }
  if ('__tuple__' in m) {
    expect(value, `${path} is a tuple`).toBeInstanceOf(Tuple);
    expectMatchesManifest([...(value as Tuple)], m.__tuple__, path);
    return;
  }
  for (const kind of ['__ordereddict__', '__dict__'] as const) {
    if (!(kind in m)) continue;
    const pairs = m[kind] as Array<[unknown, unknown]>;
    const className = pythonInfo(value)?.className;
    expect(className, `${path} class`).toBe(kind === '__ordereddict__' ? 'collections.OrderedDict' : undefined);
    const stringKeys = pairs.every(([k]) => typeof k === 'string');
    if (stringKeys) {
      expect(Object.keys(value as object), `${path} keys in order`).toEqual(pairs.map(([k]) => k));
      for (const [k, w] of pairs)
        expectMatchesManifest((value as Record<string, StateValue>)[k as string], w, `${path}.${k}`);
    } else {
      expect(value, `${path} is a Map`).toBeInstanceOf(Map);
      const map = value as Map<unknown, StateValue>;
      const keys = pairs.map(([k]) =>
        decodeKey(typeof k === 'object' && k !== null && '__key__' in k ? (k as { __key__: unknown }).__key__ : k),
      );
      expect([...map.keys()], `${path} keys`).toEqual(keys);
      for (const [i, [, w]] of pairs.entries())
        expectMatchesManifest(map.get(keys[i]), w, `${path}[${String(keys[i])}]`);
    }
    return;
  }
  throw new Error(
    `${path}: the manifest encodes something this check does not know: ${JSON.stringify(m).slice(0, 80)}`,
  );
}

/** A manifest key as the JavaScript key ckpt gives it (tuples become Tuples). */
function decodeKey(key: unknown): unknown {
  if (typeof key === 'object' && key !== null && '__tuple__' in key)
    return Tuple.of(...((key as { __tuple__: unknown[] }).__tuple__.map(decodeKey) as never[]));
  if (typeof key === 'object' && key !== null && '__int__' in key) return BigInt((key as { __int__: string }).__int__);
  return key;
}

export function manifestOf(file: string): { content: unknown; sha256_of_file?: string } {
  return JSON.parse(readFileSync(`${file}.manifest.json`, 'utf8'));
}
