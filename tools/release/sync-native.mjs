#!/usr/bin/env node
// After `changeset version`: gives the native platform packages (native/npm/*,
// outside the npm workspace, so changesets does not see them) the version of
// @ckpt/native, with `napi version`, and pins @ckpt/native's optional
// dependencies on them to that version.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const native = new URL('../../native/', import.meta.url).pathname;
const manifestPath = join(native, 'package.json');
execFileSync('npx', ['napi', 'version'], { cwd: native, stdio: 'inherit' });
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
for (const name of Object.keys(manifest.optionalDependencies ?? {})) manifest.optionalDependencies[name] = manifest.version;
writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
for (const platform of readdirSync(join(native, 'npm'))) {
  const platformManifest = JSON.parse(readFileSync(join(native, 'npm', platform, 'package.json'), 'utf8'));
  if (platformManifest.version !== manifest.version)
    throw new Error(`${platformManifest.name} is ${platformManifest.version} after napi version, not ${manifest.version}`);
  if (manifest.optionalDependencies?.[platformManifest.name] !== manifest.version)
    throw new Error(`@ckpt/native does not list ${platformManifest.name} as an optional dependency`);
}
console.log(`@ckpt/native and its ${readdirSync(join(native, 'npm')).length} platform packages are at ${manifest.version}`);
