/**
 * The web interface in a real headless Chromium: every page, every action,
 * URL state with back and forward, live updates from another process, and
 * the security cases a browser can exercise.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { safetensors } from '@ckpt/storage-safetensors';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { launch } from './support/browser.js';
import { type Fixture, makeWorkspace, stateAt } from './support/fixture.js';

let browser: Browser;
let f: Fixture;
let page: Page;
const dialogs: string[] = [];

beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
});
beforeEach(async () => {
  await f?.close();
  f = await makeWorkspace();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
});
afterAll(async () => {
  await f?.close();
  expect(dialogs).toEqual([]); // nothing from a file ever ran
});

const rows = (p: Page) => p.locator('table[aria-label="checkpoints"] tbody tr');
const notice = (p: Page) => p.locator('.notice').first();

describe('pages and navigation', () => {
  it('experiments, checkpoints sorted and filtered by URL, a selection that survives compare and back', async () => {
    await page.goto(`${f.base}/`);
    await expect.poll(() => page.locator('table[aria-label="experiments"] tbody tr').count()).toBe(1);
    expect(await page.locator('ul.folders').textContent()).toContain('baseline'); // a folder the tracker does not know
    expect(await page.locator('table[aria-label="experiments"]').textContent()).toContain('best val_loss');
    expect(await page.locator('table[aria-label="experiments"] tbody td.num').first().textContent()).toBe('0.166667');
    await page.getByRole('link', { name: 'mlp', exact: true }).click();
    await expect.poll(() => rows(page).count()).toBe(6);

    await page.getByRole('link', { name: 'Epoch', exact: true }).click(); // ascending
    await page.getByRole('link', { name: 'Epoch', exact: true }).click(); // descending
    expect(new URL(page.url()).searchParams.get('order')).toBe('desc');
    expect(await rows(page).first().locator('td').nth(2).textContent()).toBe('6');

    const [first, second] = [f.ids[0] as string, f.ids[4] as string];
    await page.getByLabel(`select ${first}`).check();
    await page.getByLabel(`select ${second}`).check();
    expect(new URL(page.url()).searchParams.get('sel')?.split(',').sort()).toEqual([first, second].sort());
    await page.getByRole('button', { name: 'Compare selected' }).click();
    await page.waitForURL(/\/compare/);
    const compare = await page.locator('main').textContent();
    expect(compare).toContain('lr'); // differs: 0.01 against 0.001
    expect(compare).not.toContain('layers'); // the same in both: hidden by default
    expect(compare).toContain('val_loss');
    await page.getByRole('link', { name: 'Show everything' }).click();
    expect(await page.locator('main').textContent()).toContain('layers');

    await page.goBack();
    await page.goBack();
    await page.waitForURL(/\/e\/mlp\?/);
    expect(await page.getByLabel(`select ${first}`).isChecked()).toBe(true);
    expect(await page.getByLabel(`select ${second}`).isChecked()).toBe(true);
    await page.goForward();
    await page.waitForURL(/\/compare/);

    // Filters are in the URL too.
    await page.goto(`${f.base}/e/mlp?metric=val_loss&max=0.3`);
    expect(await rows(page).count()).toBe(3); // epochs 4, 5 and 6
  });

  it('checkpoint detail: record, tensors by dtype, loading code; hostile names are text', async () => {
    await page.goto(`${f.base}/e/mlp/c/${f.ids[1]}`);
    const text = (await page.locator('main').textContent()) ?? '';
    expect(text).toContain('3 tensors');
    expect(text).toContain('F32');
    expect(text).toContain("import { CheckpointManager } from '@ckpt/core'");
    expect(text).toContain('from safetensors.torch import load_file');
    expect(await page.locator('main').getByText('<script>alert(1)</script>').count()).toBeGreaterThan(0);
    expect(await page.getByText('<img src=x onerror=alert(2)>').count()).toBeGreaterThan(0);
    expect(await page.locator('main script, main img').count()).toBe(0);
  });

  it('text has a contrast of at least 4.5:1 against its background (WCAG AA)', async () => {
    for (const path of ['/experiments', '/e/mlp', `/e/mlp/c/${f.ids[1]}`, '/e/mlp/retention', '/settings']) {
      await page.goto(`${f.base}${path}`);
      const worst = await page.evaluate(() => {
        const rgb = (text: string) => (text.match(/[\d.]+/g) ?? []).map(Number);
        const luminance = ([r, g, b]: number[]) => {
          const [R, G, B] = [r, g, b].map((v) => {
            const c = (v ?? 0) / 255;
            return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
          });
          return 0.2126 * (R ?? 0) + 0.7152 * (G ?? 0) + 0.0722 * (B ?? 0);
        };
        const background = (e: Element | null): number[] => {
          for (let n = e; n; n = n.parentElement) {
            const c = rgb(getComputedStyle(n).backgroundColor);
            if (c.length >= 3 && (c[3] === undefined || c[3] > 0)) return c;
          }
          return [255, 255, 255];
        };
        let low = { ratio: 21, text: '' };
        for (const e of document.querySelectorAll('body *')) {
          const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent?.trim());
          if (!own || (e as HTMLElement).offsetParent === null) continue;
          const [a, b] = [luminance(rgb(getComputedStyle(e).color)), luminance(background(e))];
          const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
          if (ratio < low.ratio) low = { ratio, text: `${e.tagName} ${e.textContent?.trim().slice(0, 40)}` };
        }
        return low;
      });
      expect(worst.ratio, `${path}: ${worst.text}`).toBeGreaterThanOrEqual(4.5);
    }
  });

  it('works from the keyboard and in a narrow window', async () => {
    await page.goto(`${f.base}/e/mlp`);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    await page.setViewportSize({ width: 400, height: 800 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(1); // wide tables scroll inside themselves
    for (const input of await page.locator('main input:not([type=hidden]):not([type=checkbox]), main select').all()) {
      const named = await input.evaluate(
        (e) => ((e as HTMLInputElement).labels?.length ?? 0) > 0 || e.hasAttribute('aria-label'),
      );
      expect(named, await input.evaluate((e) => e.outerHTML)).toBe(true);
    }
  });
});

describe('actions', () => {
  it('verify, protect, tag, describe, back up, export, restore a missing file', async () => {
    const id = f.ids[2] as string;
    await page.goto(`${f.base}/e/mlp/c/${id}`);
    await page.getByRole('button', { name: 'Verify' }).click();
    expect(await notice(page).textContent()).toContain(`${id}: ok`);
    await page.getByRole('button', { name: 'Protect' }).click();
    expect(await page.locator('dl.record').textContent()).toContain('protected');
    await page.getByLabel('Tag', { exact: true }).fill('keep-me');
    await page.getByRole('button', { name: 'Add tag' }).click();
    expect(await page.locator('dl.record').textContent()).toContain('keep-me');
    await page.getByLabel('Description').fill('a good one');
    await page.getByRole('button', { name: 'Describe' }).click();
    expect(await page.locator('dl.record').textContent()).toContain('a good one');
    await page.getByRole('button', { name: 'Back up' }).click();
    expect(await notice(page).textContent()).toContain('backed up');

    await page.getByLabel('Folder').fill('for-torch');
    await page.getByLabel('Format').selectOption('pytorch');
    await page.getByRole('button', { name: 'Export' }).click();
    expect(await notice(page).textContent()).toContain('(pytorch)');
    const exported = join(f.settings.checkpoints.directory, 'exports', 'for-torch');
    expect(readdirSync(exported).some((n) => n.endsWith('.pt'))).toBe(true);

    // The file goes missing; verify says so; restore brings it back from the backup.
    rmSync(join(f.settings.checkpoints.directory, 'mlp', `${id}.safetensors`));
    await page.getByRole('button', { name: 'Verify' }).click();
    expect(await notice(page).textContent()).toContain('missing');
    await page.getByRole('button', { name: 'Restore from backup' }).click();
    expect(await notice(page).textContent()).toContain('restored');
    expect(existsSync(join(f.settings.checkpoints.directory, 'mlp', `${id}.safetensors`))).toBe(true);
  });

  it('delete asks first; the latest needs the explicit box, as on the command line', async () => {
    const plain = f.ids[1] as string;
    await page.goto(`${f.base}/e/mlp/c/${plain}`);
    await page.getByRole('link', { name: 'Delete…' }).click();
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(/\/e\/mlp\?ok=/);
    expect(await rows(page).count()).toBe(5);

    const latest = f.ids[5] as string;
    await page.goto(`${f.base}/e/mlp/c/${latest}/delete`);
    expect(await page.locator('main').textContent()).toContain('the latest');
    await page.getByRole('button', { name: 'Delete' }).click();
    expect(await notice(page).textContent()).toContain('confirm with force');
    await page.getByLabel('Delete it anyway').check();
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(/\/e\/mlp\?ok=/);
    expect(await rows(page).count()).toBe(4);
  });

  it('retention: a preview with reasons, applied only when confirmed', async () => {
    await page.goto(`${f.base}/e/mlp/retention?last=2&best=1`);
    const plan = page.locator('table[aria-label="retention plan"] tbody tr.delete');
    expect(await plan.count()).toBe(4); // epochs 1-4: the latest two are 5 and 6, and 6 is the best too
    expect(await page.locator('main').textContent()).toContain('the best checkpoint is always kept');
    await page.getByRole('button', { name: 'Apply retention' }).click(); // the box is required: nothing happens
    expect(page.url()).toContain('/retention?last=2&best=1');
    await page.getByLabel(/I want these 4 checkpoints deleted/).check();
    await page.getByRole('button', { name: 'Apply retention' }).click();
    expect(await notice(page).textContent()).toContain('4 checkpoints deleted');
    await page.goto(`${f.base}/e/mlp`);
    expect(await rows(page).count()).toBe(2);
  });

  it('upload: a file is read, saved, hashed and recorded; a bad file is refused', async () => {
    const file = join(f.root, 'model.safetensors');
    await safetensors.save(file, stateAt(42));
    await page.goto(`${f.base}/e/mlp/upload`);
    await page.getByLabel('File').setInputFiles(file);
    await page.getByLabel('Epoch').fill('42');
    await page.getByLabel(/Metrics/).fill('val_loss=0.05');
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.waitForURL(/\/c\//);
    const text = (await page.locator('main').textContent()) ?? '';
    expect(text).toContain('saved as');
    expect(text).toContain('uploaded');
    expect(text).toContain('42');

    await page.goto(`${f.base}/e/mlp/upload`);
    await page.getByLabel('File').setInputFiles({
      name: 'junk.safetensors',
      mimeType: 'application/octet-stream',
      buffer: Buffer.from('not a checkpoint at all'),
    });
    await page.getByRole('button', { name: 'Upload' }).click();
    expect(await notice(page).textContent()).toContain('CKPT_FORMAT');
  });
});

describe('settings', () => {
  it('shows the config file, refuses a bad value with the command line message, saves atomically keeping the rest; managers use it', async () => {
    await f.close();
    f = await makeWorkspace({ config: '# the team settings\ntracker:\n  project: default\n' });
    const file = join(f.root, 'ckpt.config.yaml');
    await page.goto(`${f.base}/settings`);
    await page.getByLabel('save.everyEpochs').fill('two');
    await page.getByRole('button', { name: /Save to/ }).click();
    expect(await notice(page).textContent()).toContain(
      '`checkpoints.save.everyEpochs` must be a whole number of 0 or more',
    );
    expect(readFileSync(file, 'utf8')).toBe('# the team settings\ntracker:\n  project: default\n');

    await page.getByLabel('save.everyEpochs').fill('');
    await page.getByLabel('retention.keepLast').fill('2');
    await page.getByLabel('retention.keepBest').fill('1');
    await page.getByLabel('integrity.verifyOnLoad').check();
    await page.getByRole('button', { name: /Save to/ }).click();
    expect(await notice(page).textContent()).toContain('saved to');
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('# the team settings');
    expect(text).toContain('project: default');
    expect(text).toMatch(/retention:\s+keepLast: 2\s+keepBest: 1/);
    expect(text).toMatch(/verifyOnLoad: true/);
    expect(await page.getByLabel('retention.keepLast').inputValue()).toBe('2');

    // A manager the interface opens now keeps the latest 2 and the best: an upload's save applies it.
    const upload = join(f.root, 'model.safetensors');
    await safetensors.save(upload, stateAt(9));
    await page.goto(`${f.base}/e/mlp/upload`);
    await page.getByLabel('File').setInputFiles(upload);
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.waitForURL(/\/c\//);
    await page.goto(`${f.base}/e/mlp`);
    expect(await rows(page).count()).toBe(2); // the upload (latest) and epoch 6 (latest before it and the best)
  });
});

describe('charts and live updates', () => {
  it('metrics: curves with checkpoint markers whose id shows on hover, smoothing beside raw', async () => {
    await page.goto(`${f.base}/e/mlp/metrics?names=train_loss,val_loss&smooth=0.6`);
    const chart = page.locator('figure.chart[data-name="val_loss"]');
    await expect.poll(() => chart.getAttribute('data-drawn')).toBe('1');
    expect(Number(await chart.getAttribute('data-markers'))).toBe(6);
    const box = (await chart.locator('.u-over').boundingBox()) as {
      x: number;
      y: number;
      width: number;
      height: number;
    };
    let hover = '';
    for (let i = 0; i <= 60 && !hover.includes('checkpoint'); i++) {
      await page.mouse.move(box.x + (box.width * i) / 60, box.y + box.height / 2);
      hover = (await chart.locator('.hover').textContent()) ?? '';
    }
    expect(hover).toMatch(/checkpoint checkpoint_epoch_\d{4}/);
    await page.getByLabel('Values at step').fill('25');
    await page.getByRole('button', { name: 'Draw' }).click();
    const at = page.locator('table[aria-label="values at step 25"]');
    expect(await at.locator('tbody tr').count()).toBe(2);
    expect(await at.textContent()).toContain('0.05'); // train_loss at step 25: 1/25 + 0.01
    expect(await at.textContent()).toContain('0.5'); // val_loss: its last point at or before 25 is step 20 (epoch 2)
    await expect.poll(() => chart.getAttribute('data-drawn')).toBe('1');
    const legend = (await page.locator('figure.chart[data-name="train_loss"] .u-legend').textContent()) ?? '';
    expect(legend).toContain('(raw)');
    expect(legend).toContain('(smoothed)');
  });

  it('summary draws the size chart', async () => {
    await page.goto(`${f.base}/e/mlp/summary`);
    await expect.poll(() => page.locator('figure.chart').getAttribute('data-drawn')).toBe('1');
    expect(await page.locator('main').textContent()).toContain('Tracking database');
  });

  it('a save by another process shows on the open page within seconds, without a reload', async () => {
    await page.goto(`${f.base}/e/mlp`);
    expect(await rows(page).count()).toBe(6);
    await page.evaluate(() => {
      (window as unknown as { __still: boolean }).__still = true;
    });
    const child = spawn(
      process.execPath,
      [
        fileURLToPath(new URL('./support/save-child.mjs', import.meta.url)),
        f.settings.checkpoints.directory,
        'mlp',
        '7',
      ],
      { stdio: 'inherit' },
    );
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    await expect.poll(() => rows(page).count(), { timeout: 5000 }).toBe(7);
    expect(await page.evaluate(() => (window as unknown as { __still?: boolean }).__still)).toBe(true);
  });

  it('in the browser too: a path out of the folders is refused, and off loopback the token is required', async () => {
    for (const path of ['/e/..%2F..%2Fetc/c/passwd/file', '/e/%2E%2E/c/x']) {
      const response = await page.goto(`${f.base}${path}`);
      expect([400, 404]).toContain(response?.status());
    }
    const g = await makeWorkspace({ host: '0.0.0.0', epochs: 1 });
    try {
      expect((await page.goto(`${g.base}/experiments`))?.status()).toBe(401);
      expect((await page.goto(`${g.base}/experiments?token=${g.server.token}`))?.status()).toBe(200);
      await page.getByRole('link', { name: 'mlp', exact: true }).click(); // the cookie carries the token on
      await page.waitForURL(/\/e\/mlp$/);
      expect(await rows(page).count()).toBe(1);
    } finally {
      await g.close();
    }
  });

  it('a form on another origin cannot change anything', async () => {
    const target = `${f.base}/e/mlp/c/${f.ids[0]}/protect`;
    const attacker: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form method="post" action="${target}"><button>go</button></form><script>document.forms[0].submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (attacker.address() as { port: number }).port;
      const response = page.waitForResponse((r) => r.url() === target);
      await page.goto(`http://127.0.0.1:${port}/`);
      expect((await response).status()).toBe(403);
      const api = (await (await fetch(`${f.base}/api/e/mlp/c/${f.ids[0]}`)).json()) as {
        record: { protected: boolean };
      };
      expect(api.record.protected).toBe(false);
    } finally {
      attacker.close();
    }
  });
});
