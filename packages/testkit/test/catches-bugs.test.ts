import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The suite is only worth running if it fails on broken backends: run it on
// two (test/broken) in a child vitest and check it reports exactly those bugs.
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const config = fileURLToPath(new URL('./broken/vitest.config.ts', import.meta.url));

function runBroken(file: string) {
  const result = spawnSync(process.execPath, [vitest, 'run', '--config', config, file, '--reporter=json'], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const report = JSON.parse(result.stdout.slice(result.stdout.indexOf('{')));
  const failed = report.testResults.flatMap((f: { assertionResults: Array<{ status: string; title: string }> }) =>
    f.assertionResults.filter((a) => a.status === 'failed').map((a) => a.title),
  );
  return { status: result.status, failed };
}

describe('the storage suite catches broken backends', () => {
  it('one that drops metadata', () => {
    const { status, failed } = runBroken('drops-metadata.suite.ts');
    expect(status).not.toBe(0);
    expect(failed).toEqual(['round-trips user metadata']);
  });

  it('one that destroys the previous file when a save fails', () => {
    const { status, failed } = runBroken('suffers-torn-writes.suite.ts');
    expect(status).not.toBe(0);
    expect(failed).toContain('leaves the previous file intact and no temporaries when a save fails');
  });
});
