#!/usr/bin/env node
// The web interface's speed: the checkpoint list of an experiment with 10,000
// checkpoints (server time and render time in a real headless Chromium), and
// the tensor table of a 1,000-tensor file, each beside the library calls that
// produce the same data in the same run (the reference: count and one page of
// manager.list, a header read), with the ratio.
//
//   node tools/bench/ui.mjs [--checkpoints 10000] [--runs 9] [--dir /tmp/ckpt-bench]
//
// Targets (issue 15): list < 100 ms server-side and < 1 s rendered; tensor table < 50 ms.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CheckpointManager, loadSettings, tensor } from '@ckpt/core';
import { safetensors } from '@ckpt/storage-safetensors';
import { startUi } from '@ckpt/ui';
import { chromium } from 'playwright-core';
import { formatSeconds, machine, median, table, target } from './lib.mjs';

const { values: args } = parseArgs({
  options: {
    checkpoints: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '9' },
    dir: { type: 'string', default: '/tmp/ckpt-bench' },
  },
});
const count = Number(args.checkpoints);
const runs = Number(args.runs);
const root = join(args.dir, `ui-${process.pid}`);
const directory = join(root, 'checkpoints');
mkdirSync(directory, { recursive: true });

const now = () => process.hrtime.bigint();
const since = (start) => Number(now() - start) / 1e9;
async function timed(fn) {
  const seconds = [];
  for (let i = 0; i < runs; i++) {
    const start = now();
    await fn();
    seconds.push(since(start));
  }
  return median(seconds);
}

console.log(`ckpt ui benchmark: ${machine()}; ${count} checkpoints`);
// An experiment of `count` tiny checkpoints, saved through the manager (no fsync: this measures reading).
const manager = await CheckpointManager.open({
  directory,
  experiment: 'big',
  storage: safetensors,
  integrity: { fsync: false },
  warn: () => {},
});
const small = { w: tensor('F32', [4], new Uint8Array(16)) };
const start = now();
for (let i = 1; i <= count; i++)
  await manager.save({ state: small, epoch: i, step: i * 10, metrics: { val_loss: 1 / i, acc: i / count } });
console.log(`wrote ${count} checkpoints in ${formatSeconds(since(start))}`);
// One checkpoint with 1,000 tensors.
const wide = {};
for (let i = 0; i < 1000; i++) wide[`layers.${i}.weight`] = tensor('F32', [8, 8], new Uint8Array(256));
const saved = await manager.save({ state: wide, epoch: count + 1, step: (count + 1) * 10, metrics: { val_loss: 0 } });
await manager.close();

const settings = loadSettings({
  env: {},
  cwd: root,
  configFile: false,
  resolverFile: false,
  flags: { 'checkpoints.directory': directory },
});
const server = await startUi({ settings });
const base = `http://127.0.0.1:${server.port}`;
const get = async (path) => {
  const response = await fetch(`${base}${path}`);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.text();
};

const reader = await CheckpointManager.open({
  directory,
  experiment: 'big',
  storage: safetensors,
  readOnly: true,
  warn: () => {},
});
const listReference = await timed(() => Promise.all([reader.count(), reader.list({ limit: 500 })]));
const listAll = await timed(() => reader.list());
const listApi = await timed(() => get('/api/e/big/checkpoints'));
const listPage = await timed(() => get('/e/big'));
const id = saved.record.id;
const inspectReference = await timed(async () => {
  reader.inspect(id); // cached by the manager after the first call: measure a fresh read
  await safetensors.inspect(join(directory, 'big', `${id}.safetensors`));
});
const detailPage = await timed(() => get(`/e/big/c/${id}`));
await reader.close();

const executablePath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
let render;
if (executablePath) {
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${base}/e/big`); // warm
  render = await timed(async () => {
    await page.goto(`${base}/e/big?page=2`, { waitUntil: 'load' });
  });
  await browser.close();
}

table(
  'ckpt ui: server and browser times (median)',
  ['what', 'reference (same data, library call)', 'ckpt ui', 'ratio', 'target'],
  [
    [
      `checkpoint list, ${count} checkpoints (JSON API, one page of 500)`,
      formatSeconds(listReference),
      formatSeconds(listApi),
      `${(listApi / listReference).toFixed(2)}x`,
      target('UI list API < 100 ms', formatSeconds(listApi), listApi < 0.1),
    ],
    [
      `checkpoint list page (HTML, one page of 500)`,
      formatSeconds(listReference),
      formatSeconds(listPage),
      `${(listPage / listReference).toFixed(2)}x`,
      target('UI list page < 100 ms', formatSeconds(listPage), listPage < 0.1),
    ],
    [`for scale: manager.list() of all ${count}`, formatSeconds(listAll), '', '', ''],
    [
      'list page rendered in Chromium (navigation to load)',
      '',
      render === undefined ? 'no Chromium' : formatSeconds(render),
      '',
      render === undefined ? '' : target('UI list rendered < 1 s', formatSeconds(render), render < 1),
    ],
    [
      'detail page, 1,000-tensor file (header read + table)',
      formatSeconds(inspectReference),
      formatSeconds(detailPage),
      `${(detailPage / inspectReference).toFixed(2)}x`,
      target('UI tensor table < 50 ms', formatSeconds(detailPage), detailPage < 0.05),
    ],
  ],
);
const sizes = (await import('@ckpt/ui')).assetSizes();
table(
  'what the browser is sent (bytes, uncompressed)',
  ['asset', 'bytes'],
  Object.entries(sizes).map(([k, v]) => [k, String(v)]),
);

await server.close();
rmSync(root, { recursive: true, force: true });
