/**
 * A private PostgreSQL server for tests and benchmarks: its own data folder
 * in a temporary folder, listening on a Unix socket only, password
 * authentication, stopped (and its folder removed) by `stop()` or at exit.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findProgram, postgresFolders, run } from './process.js';

export interface PostgresServer {
  /** `postgres://ckpt:<password>@localhost/<database>?host=<socket folder>` for a database made by `createDatabase`. */
  url(database: string): string;
  /** Creates an empty database (owned by the test user) and returns its URL. */
  createDatabase(database: string): string;
  /** Runs SQL as the superuser (psql), returning its output. */
  sql(database: string, text: string): string;
  readonly password: string;
  readonly socketFolder: string;
  /** Stops the server (fast shutdown: connections dropped) without removing its data. */
  halt(): void;
  /** Starts it again on the same data and socket. */
  resume(): void;
  /** Stops and removes everything. Idempotent. */
  stop(): void;
}

function uidOf(user: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined; // not root: the server runs as this user
  return { uid: Number(run('id', ['-u', user])), gid: Number(run('id', ['-g', user])) };
}

export function startPostgres(): PostgresServer {
  const folders = postgresFolders();
  const bin = (name: string) => findProgram(name, folders);
  const user = 'postgres';
  const owner = uidOf(user);
  const root = mkdtempSync(join(tmpdir(), 'ckpt-pg-'));
  chmodSync(root, 0o755);
  if (owner) chownSync(root, owner.uid, owner.gid);
  const data = join(root, 'data');
  const password = randomBytes(12).toString('hex');
  const passwordFile = join(root, 'password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  if (owner) chownSync(passwordFile, owner.uid, owner.gid);
  const env = { PGPASSWORD: password, PGHOST: root, PGUSER: 'ckpt' };
  run(
    bin('initdb'),
    ['-D', data, '-U', 'ckpt', '--auth=scram-sha-256', `--pwfile=${passwordFile}`, '-E', 'UTF8', '--no-sync'],
    { user },
  );
  const start = () =>
    run(
      bin('pg_ctl'),
      [
        '-D',
        data,
        '-l',
        join(root, 'server.log'),
        '-w',
        '-t',
        '60',
        '-o',
        `-k ${root} -c listen_addresses=''`,
        'start',
      ],
      { user },
    );
  start();
  let running = true;
  const halt = () => {
    if (!running) return;
    run(bin('pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], { user });
    running = false;
  };
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      halt();
    } finally {
      rmSync(root, { recursive: true, force: true });
      process.removeListener('exit', stop);
    }
  };
  process.once('exit', stop);
  const url = (database: string) => `postgres://ckpt:${password}@localhost/${database}?host=${root}`;
  const sql = (database: string, text: string) =>
    run(bin('psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', database, '-At', '-c', text], { env });
  return {
    url,
    createDatabase(database) {
      run(bin('createdb'), [database], { env });
      return url(database);
    },
    sql,
    password,
    socketFolder: root,
    halt,
    resume() {
      if (running) return;
      start();
      running = true;
    },
    stop,
  };
}
