#!/usr/bin/env node
// Checks what `npm pack` made of each package, as a consumer will receive it:
// README and LICENSE present, no tests, every file `exports`, `main`, `types`
// and `bin` name present, every source map's sources inside the tarball,
// the native binary only in its platform package.
//
//   node tools/consumer/check-tarballs.mjs <folder of .tgz files>
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, posix } from 'node:path';

const folder = process.argv[2];
if (!folder) {
  console.error('usage: check-tarballs.mjs <folder of .tgz files>');
  process.exit(2);
}

/** The tarball's files (paths under `package/`) and a reader for one of them. */
function open(tarball) {
  const files = new Set(
    execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\n')
      .filter((line) => line && !line.endsWith('/')),
  );
  const read = (path) => execFileSync('tar', ['-xzOf', tarball, path], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return { files, read };
}

/** Every file path an `exports` map names (conditions and subpaths, without wildcards). */
function exportTargets(value, out = []) {
  if (typeof value === 'string') out.push(value);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) exportTargets(v, out);
  return out;
}

/** Conditions in an `exports` entry must put `types` first, or TypeScript may pick another. */
function typesFirst(value, where, problems) {
  if (!value || typeof value !== 'object') return;
  const keys = Object.keys(value);
  if (keys.includes('types') && keys[0] !== 'types') problems.push(`${where}: "types" is not the first condition`);
  for (const [key, v] of Object.entries(value)) typesFirst(v, `${where}.${key}`, problems);
}

const tarballs = readdirSync(folder).filter((name) => name.endsWith('.tgz'));
if (tarballs.length === 0) {
  console.error(`no tarballs in ${folder}`);
  process.exit(1);
}
let failures = 0;
for (const name of tarballs.sort()) {
  const { files, read } = open(join(folder, name));
  const manifest = JSON.parse(read('package/package.json'));
  const problems = [];
  const has = (path) => files.has(posix.join('package', path));
  for (const required of ['README.md', 'LICENSE', 'package.json']) if (!has(required)) problems.push(`no ${required}`);
  for (const file of files) {
    if (/(^|\/)(test|tests|__tests__)\//.test(file.slice('package/'.length)) || /\.(test|spec)\.[cm]?[jt]s$/.test(file))
      problems.push(`ships a test: ${file}`);
    if (file.endsWith('.tsbuildinfo')) problems.push(`ships a build cache: ${file}`);
    if (file.endsWith('.node') && !manifest.name.startsWith('@ckpt/native-'))
      problems.push(`ships a native binary outside a platform package: ${file}`);
    if (file.endsWith('.map')) {
      const map = JSON.parse(read(file));
      for (const source of map.sources ?? []) {
        const resolved = posix.normalize(posix.join(posix.dirname(file), map.sourceRoot ?? '', source));
        if (!resolved.startsWith('package/') || !files.has(resolved))
          problems.push(`${file} points at ${source}, which is not in the package`);
      }
    }
  }
  const named = [
    manifest.main,
    manifest.types,
    ...exportTargets(manifest.exports),
    ...Object.values(typeof manifest.bin === 'string' ? { bin: manifest.bin } : (manifest.bin ?? {})),
  ].filter((path) => typeof path === 'string' && !path.includes('*'));
  for (const path of named) if (!has(path)) problems.push(`names ${path}, which is not in the package`);
  typesFirst(manifest.exports, 'exports', problems);
  if (manifest.name.startsWith('@ckpt/native-')) {
    if (!has(manifest.main)) problems.push(`the platform package lacks its binary ${manifest.main}`);
  }
  for (const field of ['repository', 'homepage', 'keywords', 'files', 'license', 'engines'])
    if (manifest[field] === undefined) problems.push(`package.json has no "${field}"`);
  if (manifest.publishConfig?.access !== 'public') problems.push('package.json lacks publishConfig.access "public"');
  for (const section of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
    for (const [dependency, range] of Object.entries(manifest[section] ?? {}))
      if (/^(file|link|workspace):/.test(range)) problems.push(`${section}.${dependency} is ${range}`);
  }
  console.log(`${problems.length === 0 ? 'ok  ' : 'FAIL'} ${name}: ${files.size} files`);
  for (const problem of problems) console.log(`     ${problem}`);
  failures += problems.length;
}
if (failures > 0) {
  console.error(`${failures} problems in the tarballs`);
  process.exit(1);
}
console.log(`all ${tarballs.length} tarballs are as a consumer needs them`);
