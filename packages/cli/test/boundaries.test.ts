import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of the workspace's tools, without types
import { findViolations } from '../../../tools/boundaries/check.mjs';
import { scratch } from './support/run.js';

// The workspace's dependency rules (tools/boundaries/check.mjs), which `npm test` runs before the tests.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const checker = join(root, 'tools', 'boundaries', 'check.mjs');

function tree(files: Record<string, string>): string {
  const dir = scratch('boundaries');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('the dependency rules', () => {
  it('hold in this workspace', () => {
    expect(findViolations(root)).toEqual([]);
  });

  it('fail on a plugin importing a plugin, core importing hooks, contracts importing the manager, a bare CkptError, a hand-made NativeError', () => {
    const dir = tree({
      'packages/storage-pytorch/src/a.ts': "import { safetensors } from '@ckpt/storage-safetensors';\n",
      'packages/core/src/b.ts':
        "import type { HookManager } from '@ckpt/hooks';\nimport { x } from './manager/manager.js';\n",
      'packages/core/src/manager/c.ts': "import { y } from '../tensor.js';\n",
      'packages/cli/src/d.ts': "import { pytorch } from '@ckpt/storage-pytorch';\n",
      'native/src/e.ts': "const core = await import('@ckpt/core');\n",
      'packages/hooks/src/f.ts': "throw new CkptError('CKPT_X', 'bare');\n",
      'packages/core/src/errors.ts': "export const e = new CkptError('CKPT_Y', 'the registry may');\n",
      'packages/resolver-b2/src/g.ts': "throw new NativeError('CKPT_IO', 'worded by hand');\n",
      'native/src/errors.ts': "export const n = new NativeError('CKPT_IO', 'the table may');\n",
    });
    const found: string[] = findViolations(dir);
    expect(found).toHaveLength(6);
    for (const expected of [
      /^native\/src\/e\.ts: imports @ckpt\/core/,
      /^packages\/core\/src\/b\.ts: imports @ckpt\/hooks/,
      /^packages\/core\/src\/b\.ts: imports \.\/manager\/manager\.js \(core's contracts/,
      /^packages\/storage-pytorch\/src\/a\.ts: imports @ckpt\/storage-safetensors/,
      /^packages\/hooks\/src\/f\.ts: constructs a bare CkptError/,
      /^packages\/resolver-b2\/src\/g\.ts: constructs a NativeError by hand/,
    ]) {
      expect(
        found.filter((line) => expected.test(line)),
        String(expected),
      ).toHaveLength(1);
    }
    const run = spawnSync(process.execPath, [checker, dir], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr.split('\n').filter(Boolean)).toHaveLength(6);
  });
});
