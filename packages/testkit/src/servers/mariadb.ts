/**
 * A private MariaDB (or MySQL) server for tests and benchmarks: its own data
 * folder in a temporary folder, a Unix socket and no TCP, a password user,
 * stopped (and its folder removed) by `stop()` or at exit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findProgram, run } from './process.js';

export interface MariadbServer {
  /** `mysql://ckpt:<password>@localhost/<database>?socket=<socket>` */
  url(database: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(database: string): string;
  /** Runs SQL as root, returning its output. */
  sql(database: string, text: string): string;
  readonly password: string;
  readonly socket: string;
  /** Stops the server (connections dropped) without removing its data. */
  halt(): Promise<void>;
  /** Starts it again on the same data and socket. */
  resume(): Promise<void>;
  /** Stops and removes everything. */
  stop(): Promise<void>;
}

const FOLDERS = ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/mysql/bin'];

async function waitFor(socket: string, client: string, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mariadbd exited with ${child.exitCode}; see ${log}`);
    if (existsSync(socket)) {
      try {
        run(client, ['--no-defaults', `--socket=${socket}`, '-u', 'root', '-e', 'SELECT 1'], { timeoutMs: 5000 });
        return;
      } catch {
        // not accepting yet
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`mariadbd did not start within 60 s; see ${log}`);
}

export async function startMariadb(): Promise<MariadbServer> {
  const server = findProgram('mariadbd', FOLDERS);
  const client = findProgram('mariadb', FOLDERS);
  const root = mkdtempSync(join(tmpdir(), 'ckpt-mariadb-'));
  const data = join(root, 'data');
  const socket = join(root, 'mysqld.sock');
  const log = join(root, 'server.log');
  const password = randomBytes(12).toString('hex');
  const asRoot = process.getuid?.() === 0;
  run(findProgram('mariadb-install-db', FOLDERS), [
    '--no-defaults',
    `--datadir=${data}`,
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    ...(asRoot ? ['--user=root'] : []),
  ]);
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(
      server,
      [
        '--no-defaults',
        `--datadir=${data}`,
        `--socket=${socket}`,
        '--skip-networking',
        `--pid-file=${join(root, 'server.pid')}`,
        `--log-error=${log}`,
        '--innodb-buffer-pool-size=256M',
        ...(asRoot ? ['--user=root'] : []),
      ],
      { stdio: 'ignore' },
    );
    await waitFor(socket, client, child, log);
  };
  const halt = async () => {
    const running = child;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  };
  const sql = (database: string, text: string) =>
    run(client, ['--no-defaults', `--socket=${socket}`, '-u', 'root', '-N', '-B', database, '-e', text]);
  const removeAtExit = () => {
    child?.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', removeAtExit);
  await start();
  sql(
    'mysql',
    `CREATE USER 'ckpt'@'localhost' IDENTIFIED BY '${password}'; GRANT ALL PRIVILEGES ON *.* TO 'ckpt'@'localhost'`,
  );
  const url = (database: string) => `mysql://ckpt:${password}@localhost/${database}?socket=${socket}`;
  return {
    url,
    createDatabase(database) {
      sql('mysql', `CREATE DATABASE \`${database}\``);
      return url(database);
    },
    sql,
    password,
    socket,
    halt,
    resume: async () => {
      if (child && child.exitCode === null) return;
      await start();
    },
    async stop() {
      await halt();
      process.removeListener('exit', removeAtExit);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
