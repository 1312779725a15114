import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import '../../resolver-b2/test/support/moto.js'; // declares the s3Endpoint the global setup provides
import { BIN, ckpt, FIXTURES, scratch } from './support/run.js';

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

// One real demo run (crash included) gives every command below a real checkpoint folder and database.
let root: string;
let demo: string;
let config: string[];
let experimentFolder: string;

beforeAll(() => {
  root = scratch('demo');
  const run = ckpt(['demo', '--epochs', '8', '--crash-at', '4'], { cwd: root });
  expect(run.code, run.stderr).toBe(0);
  demo = join(root, 'ckpt-demo');
  config = ['--config', join(demo, 'ckpt.config.yaml')];
  experimentFolder = join(demo, 'checkpoints', 'spiral-mlp');
});

describe('ckpt demo', () => {
  it('trains, crashes for real, resumes from the latest checkpoint, verifies and exports', () => {
    const run = ckpt(['demo', '--folder', 'again', '--epochs', '6', '--crash-at', '3'], { cwd: root });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('killed by SIGKILL');
    expect(run.stdout).toMatch(
      /resumed from checkpoint_epoch_0002_\S+ \(epoch 2, digest verified\): continuing at epoch 3/,
    );
    expect(run.stdout).toMatch(/all \d+ kept checkpoints match their SHA-256/);
    for (const file of ['ckpt.db', 'ckpt.config.yaml', 'exports'])
      expect(existsSync(join(root, 'again', file))).toBe(true);
  });

  it.skipIf(process.env.CKPT_SKIP_PYTHON === '1')(
    'its exported best model loads in torch, optimizer state included',
    () => {
      const python = fileURLToPath(new URL('../../../tools/python/.venv/bin/python', import.meta.url));
      const exported = readdirSync(join(demo, 'exports')).find((name) => name.endsWith('.pt')) as string;
      const script = [
        'import sys, torch',
        'd = torch.load(sys.argv[1], weights_only=True)',
        'm = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))',
        "names = {'layers.0': '0', 'layers.1': '2', 'layers.2': '4'}",
        "m.load_state_dict({names[k.rsplit('.', 1)[0]] + '.' + k.rsplit('.', 1)[1]: v for k, v in d['model_state_dict'].items()})",
        'o = torch.optim.Adam(m.parameters(), lr=0.01)',
        "o.load_state_dict(d['optimizer_state_dict'])",
        "print(len(o.state), d['epoch'])",
      ].join('\n');
      const run = spawnSync(python, ['-c', script, join(demo, 'exports', exported)], { encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout.trim().split(' ')).toEqual(['6', expect.stringMatching(/^\d+$/)]);
    },
  );

  it('refuses a crash after the last epoch', () => {
    const run = ckpt(['demo', '--epochs', '3', '--crash-at', '5', '--folder', 'bad'], { cwd: root });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--crash-at must be at most --epochs');
  });
});

describe('checkpoint folder commands', () => {
  it('list --json: the best 3 and the latest, all ok, one best and one latest', () => {
    const records = ckpt([...config, 'list', '--json']).json<
      Array<{ epoch: number; isBest: boolean; isLatest: boolean; status: string }>
    >();
    expect(records.length).toBeGreaterThanOrEqual(3);
    expect(records.length).toBeLessThanOrEqual(4);
    expect(records.filter((r) => r.isBest)).toHaveLength(1);
    expect(records.filter((r) => r.isLatest).map((r) => r.epoch)).toEqual([8]);
    expect(records.every((r) => r.status === 'ok')).toBe(true);
    const sorted = ckpt([...config, 'list', '--json', '--sort', 'metric:val_loss', '--limit', '1']).json();
    expect(sorted).toHaveLength(1);
    expect(sorted[0].isBest).toBe(true);
    expect(ckpt([...config, 'list', '--metric', 'val_loss<', '--json']).code).toBe(2);
  });

  it('show, summary, resume-point and compare agree with each other', () => {
    const best = ckpt([...config, 'show', 'best', '--json']).json();
    expect(best.isBest).toBe(true);
    expect(best.inspection.tensors.map((t: { name: string }) => t.name)).toContain('model_state_dict.layers.0.weight');
    expect(best.sha256).toBe(sha256(best.path));
    const summary = ckpt([...config, 'summary', '--json']).json();
    expect(summary.best.id).toBe(best.id);
    expect(summary.problems).toEqual([]);
    const resume = ckpt([...config, 'resume-point', '--json']).json();
    expect(resume).toMatchObject({ resumable: true, epoch: 8 });
    const comparison = ckpt([...config, 'compare', 'best', 'latest', '--tensors', '--json']).json();
    expect(comparison.ids[0]).toBe(best.id);
    expect(comparison.ids).toHaveLength(2);
    expect(Object.keys(comparison.metrics)).toEqual(['train_loss', 'val_accuracy', 'val_loss']);
    expect(ckpt([...config, 'show', 'epoch:99']).code).toBe(2);
    expect(ckpt([...config, 'compare', 'best']).code).toBe(2);
  });

  it('verify finds a flipped byte and exits 1; a good folder exits 0', () => {
    const copy = scratch('verify');
    const folder = join(copy, 'spiral-mlp');
    spawnSync('cp', ['-r', experimentFolder, folder]);
    const ok = ckpt(['verify', folder, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json().ok).toBe(true);
    const latest = ckpt(['list', folder, '--json'])
      .json()
      .find((r: { isLatest: boolean }) => r.isLatest);
    const bytes = readFileSync(latest.path);
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0xff;
    writeFileSync(latest.path, bytes);
    const bad = ckpt(['verify', folder, '--json']);
    expect(bad.code).toBe(1);
    expect(bad.json().results.find((r: { id: string }) => r.id === latest.id).status).toBe('corrupted');
    expect(ckpt(['verify', folder]).stdout).toContain('verification FAILED');
  });

  it('export converts the best to .pt; protect, delete and prune keep their promises', () => {
    const copy = scratch('manage');
    const folder = join(copy, 'spiral-mlp');
    spawnSync('cp', ['-r', experimentFolder, folder]);
    const exported = ckpt([
      'export',
      'best',
      join(copy, 'exports'),
      '--format',
      'pytorch',
      '--in',
      folder,
      '--json',
    ]).json();
    expect(exported.format).toBe('pytorch');
    const out = exported.files[0].path;
    expect(out.endsWith('.pt')).toBe(true);
    expect(exported.files[0].sha256).toBe(sha256(out));
    expect(existsSync(exported.manifest)).toBe(true);
    expect(ckpt(['inspect', out, '--json']).json().format).toBe('pytorch');

    const refused = ckpt(['delete', 'best', '--in', folder]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/best/);

    const records = ckpt(['list', folder, '--json']).json();
    const plain = records.find((r: { isBest: boolean; isLatest: boolean }) => !r.isBest && !r.isLatest);
    expect(ckpt(['protect', plain.id, folder, '--json']).json().protected).toBe(true);
    const plan = ckpt(['prune', folder, '--keep-best', '1', '--keep-latest', '1', '--dry-run', '--json']).json();
    expect(plan.removed.map((r: { id: string }) => r.id)).not.toContain(plain.id);
    expect(ckpt(['list', folder, '--json']).json()).toHaveLength(records.length); // dry run: nothing gone
    const pruned = ckpt(['prune', folder, '--keep-best', '1', '--keep-latest', '1', '--json']).json();
    expect(pruned.removed.map((r: { id: string }) => r.id)).toEqual(plan.removed.map((r: { id: string }) => r.id));
    const left = ckpt(['list', folder, '--json']).json();
    expect(left).toHaveLength(records.length - plan.removed.length);
    for (const r of pruned.removed) expect(existsSync(r.path)).toBe(false);
    expect(ckpt(['protect', plain.id, folder, '--undo', '--json']).json().protected).toBe(false);
    const deleted = ckpt(['delete', plain.id, '--in', folder, '--json']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(existsSync(plain.path)).toBe(false);
    expect(ckpt(['prune', folder, '--keep-best', '0']).code).toBe(2);
  });

  it('names what exists when the experiment does not', () => {
    const run = ckpt(['list', '--dir', join(demo, 'checkpoints'), 'nope']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('no experiment "nope"');
    expect(run.stderr).toContain('spiral-mlp');
  });
});

describe('file commands', () => {
  it('inspect: safetensors, torch and Lightning files, with digests on request', () => {
    const st = ckpt(['inspect', join(FIXTURES, 'mlp.safetensors'), '--digest', '--json']).json();
    const manifest = JSON.parse(readFileSync(join(FIXTURES, 'mlp.safetensors.manifest.json'), 'utf8'));
    expect(st.format).toBe('safetensors');
    expect(st.tensors.map((t: { name: string }) => t.name).sort()).toEqual(
      manifest.content.__ordereddict__.map(([name]: [string]) => name).sort(),
    );
    expect(st.files[0].sha256).toBe(sha256(join(FIXTURES, 'mlp.safetensors')));
    const pt = ckpt(['inspect', join(FIXTURES, 'mlp_state_dict.pt'), '--json']).json();
    expect(pt.format).toBe('pytorch');
    expect(pt.parameterCount).toBe(st.parameterCount);
    const lightning = ckpt(['inspect', join(FIXTURES, 'lightning.ckpt')]);
    expect(lightning.stdout).toContain('pytorch-lightning_version: 2.6.6');
    expect(lightning.stdout).toContain('state_dict.net.fc1.weight');
  });

  it('hash prints exactly what sha256sum prints; --check passes, then fails on a changed file', () => {
    const dir = scratch('hash');
    const files = ['a.safetensors', 'b.pt', 'with space.ckpt'].map((name, i) => {
      const path = join(dir, name);
      copyFileSync(join(FIXTURES, ['mlp.safetensors', 'mlp_state_dict.pt', 'lightning.ckpt'][i] as string), path);
      return name;
    });
    const ours = ckpt(['hash', ...files], { cwd: dir });
    const theirs = spawnSync('sha256sum', files, { cwd: dir, encoding: 'utf8' });
    expect(ours.code).toBe(0);
    expect(ours.stdout).toBe(theirs.stdout);
    writeFileSync(join(dir, 'SUMS'), ours.stdout);
    const good = ckpt(['hash', '-c', 'SUMS'], { cwd: dir });
    expect(good.code).toBe(0);
    expect(good.stdout).toBe(spawnSync('sha256sum', ['-c', 'SUMS'], { cwd: dir, encoding: 'utf8' }).stdout);
    writeFileSync(join(dir, 'b.pt'), 'changed');
    const bad = ckpt(['hash', '--check', 'SUMS', '--json'], { cwd: dir });
    expect(bad.code).toBe(1);
    expect(bad.json().results.map((r: { status: string }) => r.status)).toEqual(['OK', 'FAILED', 'OK']);
    const text = ckpt(['hash', '--check', 'SUMS'], { cwd: dir });
    expect(text.stdout).toContain('b.pt: FAILED');
    expect(text.stderr).toContain('1 computed checksum did NOT match');
    expect(ckpt(['hash', 'missing.bin'], { cwd: dir }).code).toBe(1);
  });

  it('convert .pt -> safetensors (sharded too) round-trips exactly; diff tells equal from different', () => {
    const dir = scratch('convert');
    const out = join(dir, 'model.safetensors');
    const converted = ckpt(['convert', join(FIXTURES, 'mlp_state_dict.pt'), out, '--json']).json();
    expect(converted.format).toBe('safetensors');
    const same = ckpt(['diff', join(FIXTURES, 'mlp_state_dict.pt'), out, '--json']);
    expect(same.code).toBe(0);
    expect(same.json().identical).toBe(true);
    expect(ckpt(['convert', join(FIXTURES, 'mlp_state_dict.pt'), out]).code).toBe(2); // exists, no --force

    const sharded = join(dir, 'sharded', 'model.safetensors.index.json');
    const result = ckpt([
      'convert',
      join(FIXTURES, 'mlp_state_dict.pt'),
      sharded,
      '--shard-size',
      '200B',
      '--json',
    ]).json();
    expect(result.files.length).toBeGreaterThan(2);
    const index = ckpt(['inspect', sharded, '--json']).json();
    expect(index.files.length).toBe(result.files.length - 1);
    expect(ckpt(['diff', sharded, out]).code).toBe(0);

    const records = ckpt([...config, 'list', '--json']).json();
    const differ = ckpt(['diff', records[0].path, records[records.length - 1].path, '--json']);
    expect(differ.code).toBe(1);
    const tensors = differ.json().tensors;
    expect(tensors['model_state_dict.layers.0.weight'].status).toBe('different');
    expect(tensors['model_state_dict.layers.0.weight'].maxAbsDiff).toBeGreaterThan(0);
  });

  it('convert to and from a torch.distributed.checkpoint folder; inspect and diff read the folder', () => {
    const dir = scratch('dcp');
    const folder = join(dir, 'dcp-checkpoint');
    const written = ckpt(['convert', join(FIXTURES, 'mlp_state_dict.pt'), folder, '--to', 'dcp', '--json']);
    expect(written.code, written.stderr).toBe(0);
    expect(readdirSync(folder)).toContain('.metadata');
    const inspection = ckpt(['inspect', folder, '--json']).json();
    expect(inspection.format).toBe('dcp');
    expect(inspection.tensors.map((t: { name: string }) => t.name)).toContain('fc1.weight');
    const back = join(dir, 'back.safetensors');
    const converted = ckpt(['convert', folder, back, '--json']).json();
    expect(converted.source.format).toBe('dcp');
    expect(ckpt(['diff', folder, join(FIXTURES, 'mlp_state_dict.pt')]).code).toBe(0);
    expect(ckpt(['diff', back, join(FIXTURES, 'mlp_state_dict.pt')]).code).toBe(0);
  });

  it('verify of one file: structure and digest; a truncated file fails', () => {
    const dir = scratch('one');
    const file = join(dir, 'mlp.safetensors');
    copyFileSync(join(FIXTURES, 'mlp.safetensors'), file);
    const good = ckpt(['verify', file, '--sha256', sha256(file), '--json']);
    expect(good.code).toBe(0);
    expect(good.json().ok).toBe(true);
    expect(ckpt(['verify', file, '--sha256', '0'.repeat(64)]).code).toBe(1);
    writeFileSync(file, readFileSync(file).subarray(0, 200));
    const bad = ckpt(['verify', file, '--json']);
    expect(bad.code).toBe(1);
    expect(bad.json().problem).toMatch(/./);
  });
});

describe('tracker commands', () => {
  it('experiments, metrics (with a plot) and stats read the demo database', () => {
    const page = ckpt([...config, 'experiments', '--json']).json();
    expect(page.total).toBeGreaterThanOrEqual(1);
    expect(page.experiments[0]).toMatchObject({ name: 'spiral-mlp', project: 'ckpt-demo', status: 'completed' });
    expect(ckpt([...config, 'experiments', '--metric', 'val_loss<0.0000001', '--json']).json().total).toBe(0);
    const metrics = ckpt([...config, 'metrics', 'spiral-mlp', '--plot', '--metric', 'val_loss', '--json']).json();
    expect(metrics.metrics[0]).toMatchObject({ name: 'val_loss', count: 8 });
    expect(metrics.series.val_loss.length).toBe(8);
    const plot = ckpt([...config, 'metrics', 'spiral-mlp', '--plot', '--metric', 'val_loss']);
    expect(plot.stdout).toMatch(/[┤┼]/);
    const stats = ckpt([...config, 'stats', '--json']).json();
    expect(stats.checkpoints.total).toBeGreaterThanOrEqual(3);
    const unknown = ckpt([...config, 'metrics', 'spiral-mlp', '--metric', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no metric nope');
    expect(ckpt(['stats', '--database', join(root, 'absent.db')]).code).toBe(1);
  });
});

describe('resolver commands', () => {
  it('upload, then resolve into an empty cache, then cache ls / verify / prune', async () => {
    const endpoint = inject('s3Endpoint');
    const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
    const client = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await client.send(new CreateBucketCommand({ Bucket: 'cli-models' }));
    const dir = scratch('resolver');
    writeFileSync(
      join(dir, 'ckpt.config.yaml'),
      `resolver:\n  cacheDir: cache\n  bucket:\n    enabled: true\n    name: cli-models\n    prefix: zoo/\n    endpoint: ${endpoint}\n    forcePathStyle: true\n`,
    );
    const env = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
    copyFileSync(join(FIXTURES, 'mlp.safetensors'), join(dir, 'mlp.safetensors'));
    const up = ckpt(['upload', 'mlp.safetensors', '--json'], { cwd: dir, env });
    expect(up.code, up.stderr).toBe(0);
    expect(up.json()).toMatchObject({
      key: 'zoo/mlp.safetensors',
      skipped: false,
      sha256: sha256(join(dir, 'mlp.safetensors')),
    });
    expect(ckpt(['upload', 'mlp.safetensors', '--json'], { cwd: dir, env }).json().skipped).toBe(true);

    const resolved = ckpt(['resolve', 'mlp.safetensors', '--json'], { cwd: dir, env }).json();
    expect(resolved[0].path).toBe(join(dir, 'cache', 'mlp.safetensors'));
    expect(sha256(resolved[0].path)).toBe(sha256(join(dir, 'mlp.safetensors')));
    const listed = ckpt(['cache', 'ls', '--json'], { cwd: dir, env }).json();
    expect(listed.entries.map((e: { name: string }) => e.name)).toEqual(['mlp.safetensors']);
    expect(ckpt(['cache', 'verify', '--json'], { cwd: dir, env }).json().ok).toBe(true);

    const offline = ckpt(['resolve', 'other.safetensors', '--offline'], { cwd: dir, env });
    expect(offline.code).toBe(1);
    expect(offline.stderr).toMatch(/offline/);
    const missing = ckpt(['download', 'absent.pt'], { cwd: dir, env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('s3://cli-models/zoo/absent.pt');

    expect(ckpt(['cache', 'prune'], { cwd: dir, env }).code).toBe(2);
    const dry = ckpt(['cache', 'prune', '--max-size', '1B', '--dry-run', '--json'], { cwd: dir, env }).json();
    expect(dry.removed).toHaveLength(1);
    expect(existsSync(resolved[0].path)).toBe(true);
    ckpt(['cache', 'prune', '--max-size', '1B'], { cwd: dir, env });
    expect(existsSync(resolved[0].path)).toBe(false);
  });
});

describe('usage, config and output', () => {
  it('exit 2 on usage errors, 0 on --help and --version', () => {
    expect(ckpt(['bogus']).code).toBe(2);
    expect(ckpt(['inspect']).code).toBe(2);
    expect(ckpt(['list', '--no-such-flag']).code).toBe(2);
    const help = ckpt(['--help']);
    expect(help.code).toBe(0);
    for (const command of [
      'inspect',
      'hash',
      'verify',
      'convert',
      'diff',
      'list',
      'prune',
      'metrics',
      'resolve',
      'cache',
      'demo',
    ]) {
      expect(help.stdout).toContain(command);
    }
    expect(ckpt(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('refuses a config file with an unknown key or a wrong type, naming it', () => {
    const dir = scratch('config');
    writeFileSync(join(dir, 'ckpt.config.yaml'), 'checkpoints:\n  directry: runs\n');
    const typo = ckpt(['list'], { cwd: dir });
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('unknown setting `checkpoints.directry`');
    writeFileSync(join(dir, 'ckpt.config.yaml'), 'checkpoints:\n  mode: sideways\n');
    expect(ckpt(['list'], { cwd: dir }).stderr).toContain('`checkpoints.mode` must be one of min, max');
    writeFileSync(join(dir, 'ckpt.config.json'), '{"tracker": {"database": 3}}');
    expect(ckpt(['stats', '--config', 'ckpt.config.json'], { cwd: dir }).stderr).toContain(
      '`tracker.database` must be a string',
    );
  });

  it('flags beat the environment, which beats the config file', () => {
    const dir = scratch('precedence');
    writeFileSync(join(dir, 'ckpt.config.yaml'), `checkpoints:\n  directory: ${join(demo, 'checkpoints')}\n`);
    expect(ckpt(['list', '--json'], { cwd: dir }).json().length).toBeGreaterThan(0);
    const env = { CKPT_DIR: join(dir, 'empty') };
    expect(ckpt(['list'], { cwd: dir, env }).stderr).toContain('no experiments in');
    expect(ckpt(['list', '--json', '--dir', join(demo, 'checkpoints')], { cwd: dir, env }).code).toBe(0);
  });

  it('colour only when asked for or on a terminal; NO_COLOR wins', () => {
    const args = [...config, 'summary'];
    expect(ckpt(args, { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } }).stdout).toContain('\u001b[');
    expect(ckpt(args, { env: { NO_COLOR: '1', FORCE_COLOR: '1' } }).stdout).not.toContain('\u001b[');
    expect(ckpt(args, { env: { NO_COLOR: undefined, FORCE_COLOR: undefined } }).stdout).not.toContain('\u001b['); // a pipe is not a terminal
  });

  it('errors in --json mode are JSON on stderr', () => {
    const run = ckpt(['inspect', '/nonexistent/file.pt', '--json']);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stderr.trim())).toMatchObject({ error: { code: 'CKPT_NOT_FOUND' } });
  });
});

describe('ckpt ui', () => {
  it('serves the demo over its config, prints its URL, stops on Ctrl-C; a bad port is a usage error', async () => {
    const child = spawn(process.execPath, [BIN, ...config, 'ui', '--port', '0'], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await expect.poll(() => out, { timeout: 20_000 }).toMatch(/ckpt ui: http:\/\/127\.0\.0\.1:\d+\//);
    const url = (/(http:\/\/127\.0\.0\.1:\d+)\//.exec(out) as RegExpExecArray)[1];
    const page = await fetch(`${url}/experiments`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('spiral-mlp');
    const api = (await (await fetch(`${url}/api/e/spiral-mlp/checkpoints`)).json()) as { total: number };
    expect(api.total).toBeGreaterThan(0);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(ckpt([...config, 'ui', '--port', 'eighty']).code).toBe(2);
  });
});
