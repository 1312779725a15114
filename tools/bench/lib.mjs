// Shared pieces of the benchmarks: timing, tables, the Python reference.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

export const MiB = 2 ** 20;
export const GiB = 2 ** 30;

const venvPython = fileURLToPath(new URL('../python/.venv/bin/python', import.meta.url));
export const python = process.env.CKPT_PYTHON ?? (existsSync(venvPython) ? venvPython : 'python3');

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Median seconds of `runs` calls of `fn` (awaited). */
export async function timeIt(fn, runs = 3) {
  const seconds = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await fn();
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return median(seconds);
}

/** Runs a Python script that prints JSON; returns the parsed output. */
export function runPython(script, args = []) {
  const result = spawnSync(python, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (result.status !== 0) throw new Error(`python failed:\n${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').at(-1));
}

/** Reads a file through so it sits in the page cache. */
export function warm(path) {
  const fd = openSync(path, 'r');
  const block = Buffer.allocUnsafe(16 * MiB);
  while (readSync(fd, block) > 0);
  closeSync(fd);
}

export function machine() {
  return `${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
}

export function formatSeconds(seconds) {
  if (seconds < 1e-3) return `${(seconds * 1e6).toFixed(0)} µs`;
  if (seconds < 1) return `${(seconds * 1e3).toFixed(2)} ms`;
  return `${seconds.toFixed(2)} s`;
}

/** Prints a markdown table. */
export function table(title, header, rows) {
  console.log(`\n### ${title}\n`);
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

/** 'met' or 'NOT met', after the target when one is given. */
export const verdict = (ok, target) => `${target ? `${target}: ` : ''}${ok ? 'met' : 'NOT met'}`;
