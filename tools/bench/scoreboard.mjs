#!/usr/bin/env node
// The scoreboard: every target every benchmark recorded (lib.mjs `target`) in one table.
//
//   node tools/bench/scoreboard.mjs --reset   forget earlier results (npm run bench starts with it)
//   node tools/bench/scoreboard.mjs           print the table; exits 0 whether targets are met or not
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { machine, RESULTS_FILE } from './lib.mjs';

if (process.argv.includes('--reset')) {
  rmSync(RESULTS_FILE, { force: true });
  process.exit(0);
}

const lines = existsSync(RESULTS_FILE) ? readFileSync(RESULTS_FILE, 'utf8').split('\n').filter(Boolean) : [];
// A target measured twice (a benchmark run again) keeps its latest result.
const latest = new Map();
for (const line of lines) {
  const row = JSON.parse(line);
  latest.set(`${row.bench}\u0000${row.target}`, row);
}
const rows = [...latest.values()];
const met = rows.filter((r) => r.met).length;

console.log(`\n## Scoreboard (${new Date().toISOString().slice(0, 10)}, ${machine()})\n`);
if (rows.length === 0) {
  console.log(`No targets recorded in ${RESULTS_FILE}: run the benchmarks first.`);
  process.exit(0);
}
console.log('| benchmark | target | measured | |');
console.log('|---|---|---:|---|');
for (const r of rows) console.log(`| ${r.bench} | ${r.target} | ${r.measured} | ${r.met ? 'met' : '**NOT met**'} |`);
console.log(`\n${met} of ${rows.length} targets met.`);
