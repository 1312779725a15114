import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canDownloadNatively, downloadRange, type Progress, RangeDownloadError } from '../src/index.js';
import { scratchDir } from './helpers.js';

const dir = scratchDir();
const body = randomBytes(3 * 1024 * 1024 + 123);
let server: Server;
let base: string;
const seen: Array<{ url: string; host?: string; range?: string; ifMatch?: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({
      url: req.url ?? '',
      host: req.headers.host,
      range: req.headers.range,
      ifMatch: req.headers['if-match'] as string | undefined,
    });
    if (req.url?.startsWith('/precondition')) {
      res.writeHead(412, { 'content-length': 7 }).end('changed');
      return;
    }
    const [, from, to] = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '') ?? [];
    const slice = body.subarray(Number(from ?? 0), Number(to ?? body.length - 1) + 1);
    res.writeHead(206, { 'content-length': slice.length });
    if (req.url?.startsWith('/drop')) {
      res.write(slice.subarray(0, 100_000), () => res.socket?.destroy());
      return;
    }
    if (req.url?.startsWith('/stall')) {
      res.write(slice.subarray(0, 1000)); // then nothing
      return;
    }
    res.end(slice);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

function emptyFile(name: string): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(body.length));
  return path;
}

describe.skipIf(!canDownloadNatively())('downloadRange (native)', () => {
  it('writes the range at its offset, sends the given headers, reports progress up to the total', async () => {
    const path = emptyFile('whole');
    const progress: Progress[] = [];
    const half = 1024 * 1024;
    const first = await downloadRange({
      url: `${base}/b/k?sig=1`,
      headers: { Range: `bytes=0-${half - 1}`, 'If-Match': '"etag"' },
      path,
      offset: 0,
      length: half,
    }).done;
    const second = await downloadRange({
      url: `${base}/b/k?sig=1`,
      headers: { Range: `bytes=${half}-${body.length - 1}` },
      path,
      offset: half,
      length: body.length - half,
      onProgress: (p) => progress.push(p),
    }).done;
    expect(first + second).toBe(body.length);
    expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(
      createHash('sha256').update(body).digest('hex'),
    );
    expect(seen.find((s) => s.ifMatch)?.ifMatch).toBe('"etag"');
    expect(seen.at(-1)?.url).toBe('/b/k?sig=1');
    expect(seen.at(-1)?.host).toBe(new URL(base).host); // with the port: a presigned URL's signature covers it
    await new Promise((resolve) => setTimeout(resolve, 50)); // progress calls are queued to this thread
    expect(progress.at(-1)).toEqual({ bytesDone: body.length - half, bytesTotal: body.length - half });
  });

  it('a dropped connection rejects with the bytes already written', async () => {
    const path = emptyFile('drop');
    const error = await downloadRange({
      url: `${base}/drop`,
      headers: { Range: `bytes=0-${body.length - 1}` },
      path,
      offset: 0,
      length: body.length,
    }).done.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RangeDownloadError);
    expect(error).toMatchObject({ kind: 'network', code: 'CKPT_DOWNLOAD' });
    const { written } = error as RangeDownloadError;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThanOrEqual(100_000);
    expect(readFileSync(path).subarray(0, written).equals(body.subarray(0, written))).toBe(true);
  });

  it('an HTTP error status, a stall and a cancel each reject with their kind', async () => {
    const path = emptyFile('errors');
    const status = await downloadRange({ url: `${base}/precondition`, path, offset: 0, length: 10 }).done.catch(
      (e: unknown) => e,
    );
    expect(status).toMatchObject({ kind: 'status', status: 412, written: 0 });
    expect((status as Error).message).toContain('changed');
    const stalled = await downloadRange({
      url: `${base}/stall`,
      path,
      offset: 0,
      length: 5000,
      stallMs: 300,
    }).done.catch((e: unknown) => e);
    // The 1,000 bytes that arrived before the silence are kept: a retry resumes after them.
    expect(stalled).toMatchObject({ kind: 'stalled', written: 1000 });
    expect(readFileSync(path).subarray(0, 1000).equals(body.subarray(0, 1000))).toBe(true);
    const running = downloadRange({ url: `${base}/stall`, path, offset: 0, length: 5000, stallMs: 60_000 });
    setTimeout(() => running.cancel(), 100);
    await expect(running.done).rejects.toMatchObject({ kind: 'cancelled' });
    const refused = await downloadRange({ url: 'http://127.0.0.1:1/x', path, offset: 0, length: 1 }).done.catch(
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ kind: 'network' });
  });
});
