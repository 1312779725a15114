#!/usr/bin/env node
// Makes tools/python/.venv hold the Python references the compatibility tests
// and benchmarks compare against (requirements.txt), so `npm test` works on a
// fresh machine with only python3 and pip, and changes nothing outside the project.
// Skipped with CKPT_SKIP_PYTHON=1.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const venv = join(here, '.venv');
const python = join(venv, 'bin', 'python');
const requirements = join(here, 'requirements.txt');
const stamp = join(venv, '.requirements.sha256');

if (process.env.CKPT_SKIP_PYTHON === '1') {
  console.log('python references: skipped (CKPT_SKIP_PYTHON=1)');
  process.exit(0);
}

const wanted = createHash('sha256').update(readFileSync(requirements)).digest('hex');
if (existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) {
  console.log(`python references: up to date in ${venv}`);
  process.exit(0);
}

function run(command, args) {
  const result = spawnSync(command, args, {
    stdio: 'inherit',
    env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' },
  });
  if (result.status !== 0) {
    console.error(`python references: \`${command} ${args.join(' ')}\` failed`);
    process.exit(result.status ?? 1);
  }
}

const base = process.env.CKPT_BASE_PYTHON ?? 'python3';
console.log(`python references: installing ${requirements} into ${venv}`);
if (!existsSync(python)) run(base, ['-m', 'venv', venv]);
run(python, ['-m', 'pip', 'install', '--quiet', '-r', requirements]);
writeFileSync(stamp, wanted);
console.log('python references: ready');
