import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lockFile, NativeErrorCode, processTableIdentity } from '../src/index.js';
import { waitForLock } from '../src/lock.js';
import { implementations, scratchDir } from './helpers.js';

const dir = scratchDir();
const distIndex = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const lockModule = fileURLToPath(new URL('../dist/lock.js', import.meta.url));

/** Starts a process holding the lock on `path` with `kind`'s implementation; resolves once it holds it. */
async function holder(path: string, kind: 'native' | 'js'): Promise<ChildProcessByStdio<null, Readable, null>> {
  const script = `
    const { implementationOf } = await import(${JSON.stringify(distIndex)});
    const lock = implementationOf(${JSON.stringify(kind)}).tryLockFile(${JSON.stringify(path)});
    process.stdout.write(lock ? 'held\\n' : 'busy\\n');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = await once(child.stdout, 'data');
  expect(String(line).trim()).toBe('held');
  return child;
}

describe.each(implementations)('file locks ($kind)', (impl) => {
  it('excludes a second holder until released', () => {
    const path = join(dir, `a-${impl.kind}.lock`);
    const first = impl.tryLockFile(path);
    expect(first).not.toBeNull();
    expect(impl.tryLockFile(path)).toBeNull();
    first?.release();
    expect(first?.released).toBe(true);
    first?.release(); // idempotent
    const second = impl.tryLockFile(path);
    expect(second).not.toBeNull();
    second?.release();
  });

  it('is released when the holding process is killed with SIGKILL', async () => {
    const path = join(dir, `killed-${impl.kind}.lock`);
    const child = await holder(path, impl.kind);
    expect(impl.tryLockFile(path)).toBeNull();
    child.kill('SIGKILL');
    await once(child, 'exit');
    const lock = impl.tryLockFile(path);
    expect(lock).not.toBeNull();
    lock?.release();
  });

  it('waits for a holder, then fails with CKPT_LOCKED after the timeout', async () => {
    const path = join(dir, `wait-${impl.kind}.lock`);
    const first = impl.tryLockFile(path);
    setTimeout(() => first?.release(), 30);
    const second = await waitForLock(impl.tryLockFile, path, { timeoutMs: 5000 });
    await expect(waitForLock(impl.tryLockFile, path, { timeoutMs: 20 })).rejects.toMatchObject({
      code: NativeErrorCode.Locked,
    });
    second.release();
  });

  it('says when the folder does not exist', () => {
    expect(() => impl.tryLockFile(join(dir, 'missing', 'x.lock'))).toThrow(
      expect.objectContaining({ code: NativeErrorCode.NotFound }),
    );
  });
});

describe('the native and the JavaScript paths exclude each other', () => {
  const kinds = implementations.map((impl) => impl.kind);
  const pairs = kinds.flatMap((held) => kinds.map((tried) => [held, tried] as const));

  it.each(pairs)('a %s holder excludes a %s contender, until it is killed', async (held, tried) => {
    const path = join(dir, `cross-${held}-${tried}.lock`);
    const child = await holder(path, held);
    const contender = implementations.find((impl) => impl.kind === tried);
    expect(contender?.tryLockFile(path)).toBeNull();
    child.kill('SIGKILL');
    await once(child, 'exit');
    const lock = contender?.tryLockFile(path);
    expect(lock).not.toBeNull();
    lock?.release();
  });

  it('racing processes of both kinds never hold the lock at once', async () => {
    const path = join(dir, 'race.lock');
    const counter = join(dir, 'race.count');
    writeFileSync(counter, '0');
    const rounds = 40;
    // Each worker takes the lock, checks nobody else is inside, bumps a counter with a read-modify-write, leaves.
    const script = (kind: string) => `
      const fs = await import('node:fs');
      const { implementationOf } = await import(${JSON.stringify(distIndex)});
      const { waitForLock } = await import(${JSON.stringify(lockModule)});
      const impl = implementationOf(${JSON.stringify(kind)});
      const inside = ${JSON.stringify(`${path}.inside`)};
      for (let i = 0; i < ${rounds}; i++) {
        const lock = await waitForLock(impl.tryLockFile, ${JSON.stringify(path)}, { timeoutMs: 60000 });
        fs.writeFileSync(inside, String(process.pid), { flag: 'wx' }); // throws EEXIST if another is inside
        const n = Number(fs.readFileSync(${JSON.stringify(counter)}, 'utf8'));
        await new Promise((r) => setTimeout(r, 1));
        fs.writeFileSync(${JSON.stringify(counter)}, String(n + 1));
        fs.rmSync(inside);
        lock.release();
      }`;
    const workers = ['native', 'js', 'native', 'js'].filter((k) => kinds.includes(k as 'native' | 'js'));
    const children = workers.map((kind) =>
      spawn(process.execPath, ['--input-type=module', '-e', script(kind)], { stdio: ['ignore', 'ignore', 'pipe'] }),
    );
    const results = await Promise.all(
      children.map(async (c) => {
        let stderr = '';
        c.stderr.on('data', (d) => {
          stderr += d;
        });
        const [code] = await once(c, 'exit');
        return { code, stderr };
      }),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(Number(readFileSync(counter, 'utf8'))).toBe(rounds * workers.length);
  }, 120_000);
});

it('lockFile uses the selected implementation', async () => {
  const lock = await lockFile(join(dir, 'selected.lock'), { timeoutMs: 0 });
  expect(lock.released).toBe(false);
  lock.release();
});

describe('an owner file from another pid table (a container that died holding the lock)', () => {
  const stale = (flock: boolean) =>
    JSON.stringify({ host: 'trainer/00000000/4026532000', pid: 1, start: '12345', flock });
  const native = implementations.find((i) => i.kind === 'native');

  it.skipIf(!native)('is taken by a native contender when its holder held the kernel lock too', () => {
    const path = join(dir, 'container-native.lock');
    writeFileSync(`${path}.pid`, stale(true));
    const lock = native?.tryLockFile(path);
    expect(lock).not.toBeNull();
    expect(JSON.parse(readFileSync(`${path}.pid`, 'utf8')).pid).toBe(process.pid);
    lock?.release();
  });

  it('is never taken when its holder was a JavaScript-fallback process (no kernel lock to tell)', () => {
    const path = join(dir, 'container-js.lock');
    writeFileSync(`${path}.pid`, stale(false));
    for (const impl of implementations) expect(impl.tryLockFile(path), impl.kind).toBeNull();
  });

  it('names this process by host, boot and pid namespace', () => {
    expect(processTableIdentity()).toMatch(process.platform === 'linux' ? /^.+\/[0-9a-f]{8}\/\d+$/ : /.+/);
  });
});
