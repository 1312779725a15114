import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// describeTracker is only worth running if it fails on broken trackers: run it on three
// (test/broken, each the SQLite tracker with one bug) in a child vitest and check it
// reports exactly those bugs.
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const config = fileURLToPath(new URL('./broken/vitest.config.ts', import.meta.url));

function failures(file: string) {
  const result = spawnSync(process.execPath, [vitest, 'run', '--config', config, file, '--reporter=json'], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const report = JSON.parse(result.stdout.slice(result.stdout.indexOf('{')));
  const failed = report.testResults.flatMap((f: { assertionResults: Array<{ status: string; title: string }> }) =>
    f.assertionResults.filter((a) => a.status === 'failed').map((a) => a.title),
  );
  const passed = report.numPassedTests as number;
  return { status: result.status, failed, passed };
}

describe('the tracker conformance suite catches broken trackers', () => {
  it('one whose experiment query ignores the project', () => {
    const { status, failed, passed } = failures('ignores-project.suite.ts');
    expect(status).not.toBe(0);
    expect(failed).toEqual([
      'finds experiments by project, tags, status, config, start time and a metric condition; sorts and pages',
    ]);
    expect(passed).toBe(13);
  });

  it('one that forgets checkpoint deletions', () => {
    const { status, failed } = failures('forgets-deletions.suite.ts');
    expect(status).not.toBe(0);
    expect(failed).toEqual([
      'records, updates and removes checkpoints; finds the best across experiments',
      'reports statistics over the whole database or one project',
      'imports an exported experiment whole (what `ckpt db copy` does), and refuses a name taken',
    ]);
  });

  it('one that loses a point now and then', () => {
    const { status, failed } = failures('loses-points.suite.ts');
    expect(status).not.toBe(0);
    expect(failed).toEqual([
      'writes many points in batches and loses none; points of an unknown experiment are reported',
    ]);
  });
});
