import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type StorageBackend, StorageRegistry } from '../src/index.js';

function fakeBackend(name: string, extensions: string[], magic: string): StorageBackend {
  const refuse = () => Promise.reject(new Error('not used'));
  return {
    name,
    extensions,
    dtypes: ['F32'],
    detect: (header) => Buffer.from(header.subarray(0, magic.length)).toString() === magic,
    save: refuse,
    load: refuse,
    inspect: refuse,
  };
}

const dir = mkdtempSync(join(tmpdir(), 'ckpt-registry-'));
const alpha = fakeBackend('alpha', ['.alpha', '.alpha.index.json'], 'ALPHA');
const beta = fakeBackend('beta', ['.json'], 'BETA');

describe('StorageRegistry', () => {
  const registry = new StorageRegistry([alpha, beta]);

  it('finds backends by name and refuses duplicates', () => {
    expect(registry.get('alpha')).toBe(alpha);
    expect(registry.list().map((b) => b.name)).toEqual(['alpha', 'beta']);
    expect(() => registry.register(alpha)).toThrow(expect.objectContaining({ code: 'CKPT_CONFLICT' }));
    expect(() => registry.get('gamma')).toThrow(expect.objectContaining({ code: 'CKPT_NOT_FOUND' }));
    expect(() => registry.register({ name: 'half' } as StorageBackend)).toThrow(/needs `extensions`/);
  });

  it('matches the longest extension', () => {
    expect(registry.forPath('/x/model.alpha')).toBe(alpha);
    expect(registry.forPath('/x/model.alpha.index.json')).toBe(alpha);
    expect(registry.forPath('/x/config.json')).toBe(beta);
    expect(registry.forPath('/x/model.bin')).toBeUndefined();
  });

  it('detects by content before extension', async () => {
    const misnamed = join(dir, 'really-beta.alpha');
    writeFileSync(misnamed, 'BETA and more');
    expect(await registry.resolve(misnamed)).toBe(beta);
    const byName = join(dir, 'unknown-content.alpha');
    writeFileSync(byName, 'something else');
    expect(await registry.resolve(byName)).toBe(alpha);
  });

  it('says what it tried when nothing fits', async () => {
    const other = join(dir, 'weights.bin');
    writeFileSync(other, 'zzz');
    await expect(registry.resolve(other)).rejects.toMatchObject({ code: 'CKPT_NOT_FOUND', path: other });
  });
});
