// Fuzz target of the config loader (see docs/formats-and-safety.md,
// "Fuzzing"): mutated and generated `ckpt.config.yaml`/`.json` files and
// resolver files (seed 002's layout) are read into settings or refused with a
// typed error, within the time budget; YAML aliases cannot blow up.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readResolverFile, readSettingsFile } from '@ckpt/core';
import { fc, fuzz, hostileJsonVariants, mutatedBytes } from '@ckpt/testkit/fuzz';
import { describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'ckpt-cli-fuzz-config-'));
const encode = (text: string) => new TextEncoder().encode(text);

const YAML = `checkpoints:
  directory: ./checkpoints
  experiment: mnist
  format: safetensors
  monitor: val_loss
  mode: min
  save: { everyEpochs: 1, everySteps: 100, everySeconds: 600, bestOnly: false }
  retention: { keepLast: 3, keepBest: 2 }
  integrity: { verifyOnLoad: true, fsync: true }
  backup: best
  compression: false
tracker:
  database: sqlite:./ckpt.db
  project: demo
resolver:
  cacheDir: ~/.cache/ckpt
  offline: false
  bucket: { enabled: true, name: models, prefix: team/, endpoint: "http://127.0.0.1:9000", region: us-east-1, forcePathStyle: true }
`;
const JSON_CONFIG = JSON.stringify({
  checkpoints: { directory: 'runs', retention: { keepLast: 2 } },
  tracker: { database: 'postgres://127.0.0.1/ckpt' },
});
const SEED_002 = `ENV:
  INPUT:
    CACHE_DIR: /tmp/cache
    OFFLINE: true
    BUCKET: { ENABLED: true, NAME: b, PATH_PREFIX: p/, ENDPOINT: "http://127.0.0.1:1", REGION: r }
`;
const BOMB = `a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
checkpoints: [*d, *d, *d, *d, *d, *d, *d, *d, *d]
`;

/** A file to read: YAML or JSON, as the settings file or the resolver's. */
const files = fc.oneof(
  mutatedBytes([encode(YAML), encode(BOMB)], { focus: YAML.length, maxEdits: 6 }).map((b) => ({ b, ext: '.yaml' })),
  mutatedBytes([encode(JSON_CONFIG)], { focus: JSON_CONFIG.length, maxEdits: 6 }).map((b) => ({ b, ext: '.json' })),
  mutatedBytes([encode(SEED_002)], { focus: SEED_002.length, maxEdits: 6 }).map((b) => ({ b, ext: '.resolver.yaml' })),
  hostileJsonVariants(JSON_CONFIG).map((text) => ({ b: encode(text), ext: '.json' })),
  fc.jsonValue({ maxDepth: 4 }).map((v) => ({ b: encode(JSON.stringify(v)), ext: '.json' })),
);

describe('fuzzing the config loader', () => {
  it('settings and resolver files are read or refused with a typed error', async () => {
    let n = 0;
    const summary = await fuzz(
      'config/files',
      files,
      ({ b, ext }) => {
        const path = join(dir, `c${n++}${ext}`);
        writeFileSync(path, b);
        const layer = ext === '.resolver.yaml' ? readResolverFile(path) : readSettingsFile(path);
        for (const [key, value] of layer) {
          expect(typeof key).toBe('string');
          expect(['string', 'number', 'boolean']).toContain(typeof value);
        }
      },
      { runs: 2000, budgetMs: 5000 },
    );
    expect(summary.accepted).toBeGreaterThan(0);
    expect(summary.refused).toBeGreaterThan(0);
  });
});

describe('what fuzzing found', () => {
  it('a YAML warning (an unknown tag) refuses the file with a typed error, and prints nothing', () => {
    const warnings: Error[] = [];
    const listen = (warning: Error) => warnings.push(warning);
    process.on('warning', listen);
    try {
      const path = join(dir, 'tagged.yaml');
      writeFileSync(path, 'checkpoints:\n  directory: !secret runs\n');
      expect(() => readSettingsFile(path)).toThrow(/not valid YAML.*secret/s);
    } finally {
      process.off('warning', listen);
    }
    expect(warnings).toEqual([]);
  });

  it('an alias bomb is refused, not expanded', () => {
    const path = join(dir, 'bomb.yaml');
    writeFileSync(path, BOMB);
    expect(() => readSettingsFile(path)).toThrow(/not valid YAML/);
  });
});
