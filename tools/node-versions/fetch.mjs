#!/usr/bin/env node
// Fetches a Node.js release from the npm registry (the `node-<platform>-<arch>`
// packages carry the binary and its headers in include/node) into
// tools/node-versions/.cache/node-<major>, once, and prints that folder: put its
// bin/ first on PATH and point npm_config_nodedir at it to build native modules.
//
//   node tools/node-versions/fetch.mjs 22
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const major = process.argv[2];
if (!/^\d+$/.test(major ?? '')) {
  console.error('usage: fetch.mjs <major version, e.g. 22>');
  process.exit(2);
}
const cache = new URL('.cache/', import.meta.url).pathname;
const folder = join(cache, `node-${major}`);
if (!existsSync(join(folder, 'bin', 'node'))) {
  const scratch = join(cache, `download-${major}-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  try {
    const name = `node-${process.platform}-${process.arch}@${major}`;
    const tarball = execFileSync('npm', ['pack', name, '--silent', '--pack-destination', scratch], {
      encoding: 'utf8',
    }).trim();
    execFileSync('tar', ['-xzf', join(scratch, tarball), '-C', scratch]);
    rmSync(folder, { recursive: true, force: true });
    renameSync(join(scratch, 'package'), folder);
    if (!readdirSync(join(folder, 'include', 'node')).includes('node_api.h'))
      throw new Error(`${name} carries no headers in include/node`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
process.stdout.write(`${folder}\n`);
