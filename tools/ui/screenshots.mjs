#!/usr/bin/env node
// Screenshots of the web interface's main pages for docs/ui.md, taken in a
// real headless Chromium over the demo's output (run `npm run demo` first).
//
//   node tools/ui/screenshots.mjs [--demo ckpt-demo] [--out docs/ui]
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadSettings } from '@ckpt/core';
import { startUi } from '@ckpt/ui';
import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: { demo: { type: 'string', default: 'ckpt-demo' }, out: { type: 'string', default: 'docs/ui' } },
});
const demo = resolve(args.demo);
const config = join(demo, 'ckpt.config.yaml');
if (!existsSync(config)) throw new Error(`no demo at ${demo}: run \`npm run demo\` first`);
mkdirSync(args.out, { recursive: true });

const settings = loadSettings({ configFile: config, env: {} });
const server = await startUi({ settings });
const base = `http://127.0.0.1:${server.port}`;
const executablePath = process.env.CKPT_CHROMIUM ?? '/usr/bin/chromium';
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const experiment = settings.checkpoints.experiment ?? 'spiral-mlp';
const list = await (await fetch(`${base}/api/e/${experiment}/checkpoints`)).json();
const [first, last] = [list.checkpoints[0].id, list.checkpoints.at(-1).id];

const shots = [
  ['experiments', '/experiments'],
  ['checkpoints', `/e/${experiment}?sel=${first},${last}`],
  ['checkpoint', `/e/${experiment}/c/${last}`],
  ['compare', `/e/${experiment}/compare?ids=${first},${last}`],
  ['metrics', `/e/${experiment}/metrics?names=val_loss,train_loss&smooth=0.6`],
  ['retention', `/e/${experiment}/retention?last=1&best=1`],
  ['summary', `/e/${experiment}/summary`],
  ['settings', '/settings'],
];
for (const [name, path] of shots) {
  await page.goto(`${base}${path}`, { waitUntil: 'networkidle' });
  await page.waitForTimeout(300); // charts draw after their data arrives
  await page.screenshot({ path: join(args.out, `${name}.png`), fullPage: false });
  console.log(`${name}: ${join(args.out, `${name}.png`)}`);
}
await browser.close();
await server.close();
