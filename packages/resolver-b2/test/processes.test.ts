import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fresh, makeBucket, randomFile, resolverFor } from './support/helpers.js';
import { type FaultProxy, startProxy } from './support/proxy.js';

const child = fileURLToPath(new URL('./support/resolve-child.mjs', import.meta.url));
const bucket = 'ckpt-race';
let proxy: FaultProxy;

beforeAll(async () => {
  await makeBucket(bucket);
  proxy = await startProxy(Number(new URL(inject('s3Endpoint')).port));
});
afterAll(() => proxy.close());

describe('processes racing for one file', () => {
  it('8 processes resolving one object at once download it once and all get the complete, verified file', async () => {
    const { path, bytes } = randomFile('shared.pth', 8 << 20);
    await resolverFor(bucket).upload(path);
    const cacheDir = fresh('shared-cache');
    proxy.reset();
    const runs = Array.from({ length: 8 }, () => {
      const worker = spawn(process.execPath, [child, proxy.endpoint, bucket, cacheDir, 'shared.pth'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      worker.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      worker.stderr.on('data', (chunk: Buffer) => {
        err += chunk.toString();
      });
      return once(worker, 'exit').then(([code]) => ({ code, out, err }));
    });
    const results = await Promise.all(runs);
    const expected = createHash('sha256').update(bytes).digest('hex');
    for (const result of results) {
      expect(result.code, result.err).toBe(0);
      expect(JSON.parse(result.out)).toEqual({ path: `${cacheDir}/shared.pth`, sha256: expected });
    }
    // Downloaded once: the object's bytes crossed the wire once (plus headers).
    expect(proxy.bytesDown).toBeGreaterThanOrEqual(bytes.length);
    expect(proxy.bytesDown).toBeLessThan(bytes.length * 1.1);
    expect(proxy.requests.GET).toBe(8); // eight 1 MiB parts, by one process
    expect(readdirSync(cacheDir, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.ckpt-tmp'))).toEqual(
      [],
    );
  });
});
