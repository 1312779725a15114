// Shared pieces of the benchmarks: timing, tables, the Python reference.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
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

/**
 * Best mean seconds per call over `samples` batches of `batch` calls: for
 * sub-millisecond work on a shared machine, where a slow sample measures the
 * neighbours rather than the code. Python references use the same rule.
 */
export async function bestOf(fn, samples = 20, batch = 20) {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < samples; i++) {
    const start = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) await fn();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9 / batch);
  }
  return best;
}

/**
 * Seconds for one write of a new file at \`path\`: the previous output removed
 * first (as a checkpoint manager writes new files) and \`sync\` run, so that no
 * run pays for an earlier one's writeback.
 */
export async function timeFreshWrite(path, write) {
  rmSync(path, { force: true });
  execFileSync('sync');
  return timeIt(write, 1);
}

/**
 * The write floor: median seconds for \`dd\` to write \`bytes\` of zeros to a new
 * file at \`path\` and fsync it (\`conv=fsync\`), each run from a clean writeback
 * state as the saves it is compared with. No checkpoint write can beat it.
 */
export async function ddFloor(path, bytes, runs) {
  const args = ['if=/dev/zero', `of=${path}`, 'bs=16M', `count=${bytes / (16 * MiB)}`, 'conv=fsync'];
  const times = [];
  for (let i = 0; i < runs; i++) {
    times.push(await timeFreshWrite(path, () => execFileSync('dd', args, { stdio: 'ignore' })));
  }
  rmSync(path, { force: true });
  return median(times);
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

/** Where every benchmark records its targets for the scoreboard (tools/bench/scoreboard.mjs). */
export const RESULTS_FILE = process.env.CKPT_BENCH_RESULTS ?? join(tmpdir(), 'ckpt-bench', 'targets.jsonl');
const BENCH = basename(process.argv[1] ?? 'bench', '.mjs');

/** Records a target's outcome for the scoreboard and returns 'met' or 'NOT met' for the benchmark's own table. */
export function target(name, measured, ok) {
  mkdirSync(dirname(RESULTS_FILE), { recursive: true });
  const line = { bench: BENCH, target: name, measured: String(measured), met: Boolean(ok) };
  appendFileSync(RESULTS_FILE, `${JSON.stringify(line)}\n`);
  return verdict(ok);
}

/** Prints a benchmark's targets table, each row [target, measured, ok], and records them. */
export function printTargets(rows) {
  table(
    'Targets',
    ['target', 'measured', ''],
    rows.map(([name, measured, ok]) => [name, measured, target(name, measured, ok)]),
  );
}

/**
 * Starts an S3-compatible server on 127.0.0.1 for a benchmark: moto from the project's venv, or
 * s3s-fs (a faster one, `cargo install s3s-fs@0.14.1 --features binary`) when its path is given.
 */
export async function startS3Server(root, credentials, s3sFs) {
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const name = s3sFs ? 's3s-fs' : 'moto';
  if (s3sFs) mkdirSync(join(root, 'store'), { recursive: true });
  const server = s3sFs
    ? spawn(
        s3sFs,
        [
          '--host',
          '127.0.0.1',
          '--port',
          String(port),
          '--access-key',
          credentials.accessKeyId,
          '--secret-key',
          credentials.secretAccessKey,
          join(root, 'store'),
        ],
        { stdio: 'ignore' },
      )
    : spawn(python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    try {
      await fetch(`${endpoint}/`);
      break;
    } catch {
      if (i > 100) {
        server.kill();
        throw new Error(`${name} did not start (moto: pip install "moto[server]")`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { endpoint, name, stop: () => server.kill() };
}
