#!/usr/bin/env node
/**
 * The dependency rules of the workspace, checked on the source: which @ckpt
 * package may import which. `npm test` runs it first and fails on a violation.
 *
 *   node tools/boundaries/check.mjs [ROOT]      exit 1 and one line per violating import
 *
 * Rules: native imports no package; core imports native only; hooks imports
 * core only; plugins (storage, trackers, resolver) and testkit build on core
 * and native and never import one another or hooks; the ui builds on core,
 * the storage backends and the tracker; only the cli imports
 * everything. Inside core, the contracts (every module outside `manager/`)
 * never import the manager, so a backend author depends on the contracts alone.
 * And one error registry: nothing outside the errors modules (core's and
 * native's) constructs a bare `CkptError`; every error is of a family. And
 * one message table: nothing constructs a `NativeError` by hand, but through
 * `nativeError()`, whose messages come from `native/messages.txt`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const PLUGIN = ['@ckpt/core', '@ckpt/native'];
export const RULES = {
  native: [],
  core: ['@ckpt/native'],
  hooks: ['@ckpt/core'],
  testkit: ['@ckpt/core'],
  'storage-safetensors': PLUGIN,
  'storage-pytorch': PLUGIN,
  'tracker-sqlite': PLUGIN,
  // The engine the server trackers share, and the trackers over it.
  'tracker-sql': PLUGIN,
  'tracker-postgres': [...PLUGIN, '@ckpt/tracker-sql'],
  'tracker-mysql': [...PLUGIN, '@ckpt/tracker-sql'],
  'resolver-b2': PLUGIN,
  // The web interface is an application over the plugins, as the cli is; the cli loads it.
  ui: ['@ckpt/core', '@ckpt/native', '@ckpt/storage-safetensors', '@ckpt/storage-pytorch', '@ckpt/tracker-sqlite'],
  cli: '*',
};

function sources(folder) {
  const out = [];
  const stack = [folder];
  while (stack.length > 0) {
    const dir = stack.pop();
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) stack.push(path);
      else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
    }
  }
  return out;
}

const IMPORT = /(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g;

/** Every import that breaks a rule, as `file: imports X (allowed: ...)`. */
export function findViolations(root) {
  const violations = [];
  for (const [name, allowed] of Object.entries(RULES)) {
    const base = name === 'native' ? join(root, 'native') : join(root, 'packages', name);
    let files;
    try {
      files = sources(join(base, 'src'));
    } catch {
      continue; // a package that is not there
    }
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      if (!/\/src\/errors\.ts$/.test(file) && /new CkptError\(/.test(text)) {
        violations.push(`${relative(root, file)}: constructs a bare CkptError (use an error family from @ckpt/core)`);
      }
      if (!/\/src\/errors\.ts$/.test(file) && /new NativeError\(/.test(text)) {
        violations.push(
          `${relative(root, file)}: constructs a NativeError by hand (use nativeError() and its message table)`,
        );
      }
      for (const match of text.matchAll(IMPORT)) {
        const target = match[1];
        const where = relative(root, file);
        if (target.startsWith('@ckpt/')) {
          const pkg = target.split('/').slice(0, 2).join('/');
          if (allowed !== '*' && !allowed.includes(pkg) && pkg !== `@ckpt/${name}`) {
            violations.push(
              `${where}: imports ${pkg} (${name} may import ${allowed.join(', ') || 'no @ckpt package'})`,
            );
          }
        }
        const inCoreContracts = name === 'core' && !where.includes('/src/manager/') && !where.endsWith('/src/index.ts');
        if (inCoreContracts && /(^|\/)manager\//.test(target)) {
          violations.push(`${where}: imports ${target} (core's contracts never import the manager)`);
        }
      }
    }
  }
  return violations;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? fileURLToPath(new URL('../../', import.meta.url));
  const violations = findViolations(root);
  for (const v of violations) process.stderr.write(`boundary: ${v}\n`);
  if (violations.length > 0) process.exit(1);
  process.stdout.write(`boundaries: ${Object.keys(RULES).length} packages, every import within the rules\n`);
}
