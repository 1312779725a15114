import { existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fixture, HOSTILE_TAG, HOSTILE_TENSOR, makeWorkspace } from './support/fixture.js';

let f: Fixture;
beforeAll(async () => {
  f = await makeWorkspace();
});
afterAll(() => f?.close());

const form = (fields: Record<string, string>) => new URLSearchParams(fields);

describe('requests that must be refused', () => {
  it('a state-changing request from another origin (or another site) changes nothing', async () => {
    const id = f.ids[0] as string;
    const url = `${f.base}/e/mlp/c/${id}/protect`;
    const evil = await fetch(url, {
      method: 'POST',
      headers: { origin: 'http://evil.example' },
      body: form({}),
      redirect: 'manual',
    });
    expect(evil.status).toBe(403);
    const site = await fetch(url, {
      method: 'POST',
      headers: { 'sec-fetch-site': 'cross-site' },
      body: form({}),
      redirect: 'manual',
    });
    expect(site.status).toBe(403);
    const api = await fetch(`${f.base}/api/e/mlp/c/${id}`, { method: 'DELETE', headers: { origin: 'null' } });
    expect(api.status).toBe(403);
    const record = (await (await fetch(`${f.base}/api/e/mlp/c/${id}`)).json()) as { record: { protected: boolean } };
    expect(record.record.protected).toBe(false);
    // The same request from the page's own origin goes through.
    const own = await fetch(url, { method: 'POST', headers: { origin: f.base }, body: form({}), redirect: 'manual' });
    expect(own.status).toBe(303);
    const after = (await (await fetch(`${f.base}/api/e/mlp/c/${id}`)).json()) as { record: { protected: boolean } };
    expect(after.record.protected).toBe(true);
  });

  it('another Host name is refused (no DNS rebinding)', async () => {
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port: f.server.port, path: '/experiments', headers: { host } }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
    expect(await status(`attacker.example:${f.server.port}`)).toBe(421);
    expect(await status(`localhost:${f.server.port}`)).toBe(200);
  });

  it('paths stay inside the folders: no .. in names, no link out of the experiment, no export outside', async () => {
    for (const path of ['/e/..%2F..%2Fetc/c/passwd/file', '/e/%2E%2E/c/x', '/api/e/..%2Fcheckpoints/checkpoints']) {
      const response = await fetch(`${f.base}${path}`);
      expect([400, 404]).toContain(response.status);
    }
    // A checkpoint file replaced by a link to a file outside its folder is not served.
    const secret = join(f.root, 'secret.txt');
    writeFileSync(secret, 'top secret');
    const victim = f.ids[1] as string;
    const file = join(f.settings.checkpoints.directory, 'mlp', `${victim}.safetensors`);
    rmSync(file);
    symlinkSync(secret, file);
    const download = await fetch(`${f.base}/e/mlp/c/${victim}/file`);
    expect(download.status).toBe(400);
    expect(await download.text()).not.toContain('top secret');
    // A missing file is a 404 that says so.
    rmSync(file);
    const gone = await fetch(`${f.base}/e/mlp/c/${victim}/file`);
    expect(gone.status).toBe(404);
    expect(await gone.text()).toContain('is missing');
    // An export folder must be one plain name under the exports folder.
    const exported = await fetch(`${f.base}/e/mlp/c/${f.ids[0]}/export`, {
      method: 'POST',
      headers: { origin: f.base },
      body: form({ folder: '../../outside', format: 'safetensors' }),
      redirect: 'manual',
    });
    expect(exported.status).toBe(303);
    expect(exported.headers.get('location')).toMatch(/error=CKPT_INVALID_ARGUMENT/);
    expect(existsSync(join(f.root, 'outside'))).toBe(false);
  });

  it('names from files are shown as text: a <script> tag and an <img onerror> tensor name are escaped', async () => {
    const list = await (await fetch(`${f.base}/e/mlp`)).text();
    expect(list).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(list).not.toContain(HOSTILE_TAG);
    const detail = await (await fetch(`${f.base}/e/mlp/c/${f.ids[0]}`)).text();
    expect(detail).toContain('&lt;img src=x onerror=alert(2)&gt;');
    expect(detail).not.toContain(HOSTILE_TENSOR);
    expect((await fetch(`${f.base}/e/mlp`)).headers.get('content-security-policy')).toContain("script-src 'self'");
  });

  it('off loopback every request needs the token, which the printed URL carries', async () => {
    const g = await makeWorkspace({ host: '0.0.0.0', epochs: 1 });
    try {
      expect(g.server.token).toMatch(/^[\w-]{20,}$/);
      expect(g.server.url).toContain(`?token=${g.server.token}`);
      expect((await fetch(`${g.base}/experiments`)).status).toBe(401);
      expect((await fetch(`${g.base}/api/experiments?token=wrong`)).status).toBe(401);
      const first = await fetch(`${g.base}/experiments?token=${g.server.token}`);
      expect(first.status).toBe(200);
      const cookie = first.headers.get('set-cookie') ?? '';
      expect(cookie).toMatch(/ckpt_token=.*HttpOnly.*SameSite=Strict/i);
      // The cookie serves the pages the first one links to; a script may send the token as a bearer.
      expect((await fetch(`${g.base}/e/mlp`, { headers: { cookie: cookie.split(';')[0] as string } })).status).toBe(
        200,
      );
      expect(
        (await fetch(`${g.base}/api/experiments`, { headers: { authorization: `Bearer ${g.server.token}` } })).status,
      ).toBe(200);
    } finally {
      await g.close();
    }
  });
});

describe('the JSON API', () => {
  it('serves every page as data and reports errors with their code', async () => {
    const experiments = (await (await fetch(`${f.base}/api/experiments`)).json()) as {
      experiments: Array<{ name: string }>;
    };
    expect(experiments.experiments.map((e) => e.name)).toContain('mlp');
    const list = (await (await fetch(`${f.base}/api/e/mlp/checkpoints?sort=metric:val_loss`)).json()) as {
      checkpoints: Array<{ metrics: { val_loss: number } }>;
    };
    const losses = list.checkpoints.map((c) => c.metrics.val_loss);
    expect(losses).toEqual([...losses].sort((a, b) => a - b));
    const missing = await fetch(`${f.base}/api/e/mlp/c/no-such-checkpoint`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'CKPT_NOT_FOUND' } });
    const metrics = (await (
      await fetch(`${f.base}/api/e/mlp/metrics?names=train_loss&buckets=10&smooth=0.9`)
    ).json()) as {
      series: Array<{ values: number[]; smoothed: number[]; min: number[]; max: number[] }>;
      markers: unknown[];
    };
    const [series] = metrics.series;
    expect(series?.values.length).toBeLessThanOrEqual(10);
    // Smoothing never leaves the raw range.
    const lo = Math.min(...(series?.min ?? []));
    const hi = Math.max(...(series?.max ?? []));
    for (const v of series?.smoothed ?? []) expect(v >= lo - 1e-12 && v <= hi + 1e-12).toBe(true);
    expect(metrics.markers.length).toBeGreaterThan(0);
    expect(readFileSync(join(f.settings.checkpoints.directory, 'mlp', 'checkpoint_metadata.json'), 'utf8')).toContain(
      'mlp',
    );
  });
});
