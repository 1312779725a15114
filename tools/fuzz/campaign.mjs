#!/usr/bin/env node
/**
 * A longer fuzz campaign: every fuzz target of the repository (the Rust
 * targets in native/crates/ckpt-io/tests/fuzz_*.rs and the TypeScript ones in
 * packages/* /test/fuzz*.test.ts), run once per seed with every target's
 * count multiplied by --scale. Prints a table of executions per target.
 *
 *   node tools/fuzz/campaign.mjs [--seeds 1,2,3] [--scale 20] [--only rust|ts]
 *
 * A failing input is saved by the target itself as a regression file
 * (packages/<name>/test/fuzz-regressions/<target>/, or
 * native/crates/ckpt-io/tests/fuzz_<name>.regressions) and replayed first by
 * every later `npm test`: fix the defect, then commit the file with the fix.
 * Exits 1 when any target failed, naming the new regression files.
 * Needs a build (`npm run build`): the TypeScript targets import the packages.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    scale: { type: 'string', default: '20' },
    only: { type: 'string' },
  },
});
const seeds = values.seeds.split(',').map((s) => Number(s.trim()));
if (seeds.some((s) => !Number.isSafeInteger(s) || s < 0)) usage('--seeds takes whole numbers, comma-separated');
if (!/^[1-9]\d*$/.test(values.scale)) usage('--scale takes a positive whole number');
if (values.only && !['rust', 'ts'].includes(values.only)) usage('--only takes rust or ts');

function usage(problem) {
  process.stderr.write(`${problem}\nusage: campaign.mjs [--seeds 1,2,3] [--scale 20] [--only rust|ts]\n`);
  process.exit(2);
}

/** One run of targets: a command in a folder. */
const suites = [];
if (values.only !== 'ts') {
  suites.push({
    name: 'native (Rust)',
    cwd: join(root, 'native'),
    command: 'cargo',
    args: ['test', '--release', '--quiet', '-p', 'ckpt-io', '--test', 'fuzz_*', '--', '--nocapture'],
  });
}
if (values.only !== 'rust') {
  for (const pkg of readdirSync(join(root, 'packages'))) {
    let files = [];
    try {
      files = readdirSync(join(root, 'packages', pkg, 'test')).filter((f) => /^fuzz.*\.test\.ts$/.test(f));
    } catch {
      continue;
    }
    if (files.length === 0) continue;
    suites.push({
      name: `@ckpt/${pkg}`,
      cwd: join(root, 'packages', pkg),
      command: 'npx',
      args: ['vitest', 'run', ...files.map((f) => `test/${f}`), '--testTimeout=0'],
    });
  }
}

const totals = new Map(); // target → { executions, accepted, refused, seeds }
const failures = [];
const started = Date.now();
for (const seed of seeds) {
  for (const suite of suites) {
    process.stderr.write(`seed ${seed}, ${suite.name} ...\n`);
    const run = spawnSync(suite.command, suite.args, {
      cwd: suite.cwd,
      env: { ...process.env, CKPT_FUZZ_SEED: String(seed), CKPT_FUZZ_SCALE: values.scale },
      encoding: 'utf8',
      maxBuffer: 256 << 20,
    });
    const output = `${run.stdout}\n${run.stderr}`;
    for (const line of output.split('\n')) {
      const match = /^\.?fuzz (\S+): (.*)$/.exec(line.trim());
      if (!match) continue;
      const tally = parseTally(match[2]);
      const total = totals.get(match[1]) ?? { executions: 0, accepted: 0, refused: 0, seeds: 0 };
      total.executions += tally.executions;
      total.accepted += tally.accepted;
      total.refused += tally.refused;
      total.seeds++;
      totals.set(match[1], total);
    }
    if (run.status !== 0) {
      failures.push(`seed ${seed}, ${suite.name}:\n${output.split('\n').slice(-60).join('\n')}`);
    }
  }
}

/** A target's line: JSON from the TypeScript targets, "seed S, N executions, A accepted, R refused" from Rust. */
function parseTally(text) {
  if (text.startsWith('{')) return JSON.parse(text);
  const number = (word) => Number(new RegExp(`(\\d+) ${word}`).exec(text)?.[1] ?? 0);
  return { executions: number('executions'), accepted: number('accepted'), refused: number('refused') };
}

const minutes = ((Date.now() - started) / 60_000).toFixed(1);
const lines = [
  `Fuzz campaign: seeds ${seeds.join(', ')}, scale ${values.scale}, ${minutes} min`,
  '',
  '| target | seeds | executions | accepted | refused |',
  '|---|---:|---:|---:|---:|',
];
let all = 0;
for (const [target, t] of [...totals].sort(([a], [b]) => a.localeCompare(b))) {
  lines.push(`| ${target} | ${t.seeds} | ${t.executions} | ${t.accepted} | ${t.refused} |`);
  all += t.executions;
}
lines.push(`| **all** | | **${all}** | | |`);
process.stdout.write(`${lines.join('\n')}\n`);

if (failures.length > 0) {
  const status = spawnSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: root, encoding: 'utf8' });
  const saved = status.stdout
    .split('\n')
    .filter((l) => /fuzz-regressions|\.regressions$/.test(l))
    .map((l) => l.slice(3));
  process.stdout.write(`\n${failures.length} failing run(s):\n\n${failures.join('\n\n')}\n`);
  if (saved.length > 0) process.stdout.write(`\nNew regression files:\n${saved.map((s) => `  ${s}`).join('\n')}\n`);
  process.exit(1);
}
