#!/usr/bin/env node
// The `ckpt` command. This file is committed (not built) so that `npm install`
// links `node_modules/.bin/ckpt` on a fresh clone, before `dist/` exists.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(
    'error: ckpt is not built yet. In the workspace, run `npm run build` (or `npm run demo`, which builds it).\n',
  );
  process.exit(1);
}
await import(entry.href);
