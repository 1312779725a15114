/**
 * Power-loss simulation without a virtual machine, in the manner of ALICE and
 * CrashMonkey: a command runs under `strace`, which records every system
 * call that changes files under one folder (creates, writes, truncations,
 * renames, links, unlinks, flushes); the recording is then replayed onto a
 * model of the folder, cut after each call, and each cut is written out as
 * the folder a machine could come back to:
 *
 * - `process-crash`: everything done so far survives (the kernel still had it);
 * - `power-loss`: only what was flushed survives: a file's bytes as of its
 *   last fsync/fdatasync, and a folder's names as of its last fsync;
 * - `power-loss-ordered`: names and sizes survive in order (a journaling
 *   filesystem commits metadata in order) but unflushed bytes do not: they
 *   read as zeros. This is where a file renamed into place, or rewritten in
 *   place, before it was flushed comes back empty or zeroed.
 *
 * Only a single folder level is modelled (the experiment folder); names in
 * subfolders are tracked by path like any other.
 */

import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type CrashMode = 'process-crash' | 'power-loss' | 'power-loss-ordered';
export const CRASH_MODES: readonly CrashMode[] = ['process-crash', 'power-loss', 'power-loss-ordered'];

/** One recorded call that changes files, with its paths inside the folder. */
export type FileOp =
  | { op: 'create'; path: string; fd: number; truncate: boolean; append: boolean }
  | { op: 'open'; path: string; fd: number; truncate: boolean; append: boolean }
  | { op: 'write'; fd: number; data: Buffer; offset?: number }
  | { op: 'truncate'; fd: number; length: number }
  | { op: 'allocate'; fd: number; length: number }
  | { op: 'sync'; fd: number }
  | { op: 'close'; fd: number }
  | { op: 'rename'; from: string; to: string }
  | { op: 'link'; from: string; to: string }
  | { op: 'unlink'; path: string }
  | { op: 'mkdir'; path: string };

const TRACED = [
  'openat',
  'open',
  'creat',
  'write',
  'pwrite64',
  'writev',
  'pwritev',
  'ftruncate',
  'fallocate',
  'rename',
  'renameat',
  'renameat2',
  'link',
  'linkat',
  'unlink',
  'unlinkat',
  'mkdir',
  'mkdirat',
  'fsync',
  'fdatasync',
  'close',
];

/**
 * Why the recorder cannot run here, or undefined when it can. With
 * `CKPT_REQUIRE_FAULT_TESTS=1` (set in CI) a missing recorder is an error.
 */
export function crashRecorderUnavailable(): string | undefined {
  const reason = probeRecorder();
  if (reason && process.env.CKPT_REQUIRE_FAULT_TESTS === '1') {
    throw new Error(`CKPT_REQUIRE_FAULT_TESTS=1, but the power-loss tests cannot run: ${reason}`);
  }
  return reason;
}

function probeRecorder(): string | undefined {
  if (process.platform !== 'linux') return `strace is Linux-only (this is ${process.platform})`;
  const probe = spawnSync('strace', ['-qq', '-e', 'trace=none', 'true'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return `strace does not run here: ${probe.error?.message ?? probe.stderr}`;
  return undefined;
}

/**
 * Runs `command` under strace and returns the calls that changed anything
 * under `folder` (an absolute path), in the order they returned.
 */
export function recordFileOps(command: string, args: readonly string[], folder: string): FileOp[] {
  const log = join(folder, '..', `.strace-${process.pid}-${Date.now()}.log`);
  const run = spawnSync(
    'strace',
    ['-f', '-qq', '-y', '-xx', '-s', String(1 << 24), '-o', log, '-e', `trace=${TRACED.join(',')}`, command, ...args],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  if (run.status !== 0) throw new Error(`the recorded command failed (${run.status}): ${run.stderr}`);
  return parseTrace(readFileSync(log, 'latin1'), folder);
}

const hex = (text: string) => Buffer.from(text.replace(/\\x/g, ''), 'hex');
const STRING = /"((?:\\x[0-9a-f]{2})*)"/g;
const FD = /^(\d+)<((?:\\x[0-9a-f]{2})*)>/;

/** Parses strace -f -y -xx output; calls split by other threads are joined at their return. */
export function parseTrace(text: string, folder: string): FileOp[] {
  const inside = (path: string) => path === folder || path.startsWith(`${folder}/`);
  const relative = (path: string) => path.slice(folder.length + 1);
  const unfinished = new Map<string, string>();
  const ops: FileOp[] = [];
  for (const raw of text.split('\n')) {
    const match = /^(\d+) +(.*)$/.exec(raw);
    if (!match) continue;
    const [, pid, rest] = match as unknown as [string, string, string];
    let line = rest;
    if (line.endsWith('<unfinished ...>')) {
      unfinished.set(pid, line.slice(0, -'<unfinished ...>'.length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(line);
    if (resumed) {
      line = (unfinished.get(pid) ?? '') + (resumed[1] as string);
      unfinished.delete(pid);
    }
    const call = /^(\w+)\((.*)\) += (.*)$/.exec(line);
    if (!call) continue;
    const [, name, argText, result] = call as unknown as [string, string, string, string];
    if (result.startsWith('-1') || result.startsWith('?')) continue;
    const strings = [...argText.matchAll(STRING)].map((m) => hex(m[1] as string).toString('utf8'));
    const fdArg = FD.exec(argText);
    const fdPath = fdArg ? hex(fdArg[2] as string).toString('utf8') : undefined;
    const fd = fdArg ? Number(fdArg[1]) : -1;
    const returned = FD.exec(result);
    switch (name) {
      case 'openat':
      case 'open':
      case 'creat': {
        if (!returned) continue;
        const path = hex(returned[2] as string).toString('utf8');
        if (!inside(path)) continue;
        const flags = name === 'creat' ? 'O_CREAT|O_TRUNC' : argText;
        const opened = {
          path: relative(path),
          fd: Number(returned[1]),
          truncate: flags.includes('O_TRUNC'),
          append: flags.includes('O_APPEND'),
        };
        ops.push({ op: flags.includes('O_CREAT') ? 'create' : 'open', ...opened });
        break;
      }
      case 'write':
      case 'pwrite64':
      case 'writev':
      case 'pwritev': {
        if (!fdPath || !inside(fdPath)) continue;
        const written = Number(result);
        const bytes = Buffer.concat([...argText.matchAll(STRING)].map((m) => hex(m[1] as string)));
        if (bytes.length < written) throw new Error(`a write of ${written} bytes is past the recorder's limit`);
        const offset = name.startsWith('p') ? Number(argText.slice(argText.lastIndexOf(',') + 1)) : undefined;
        ops.push({ op: 'write', fd, data: bytes.subarray(0, written), ...(offset === undefined ? {} : { offset }) });
        break;
      }
      case 'ftruncate':
      case 'fallocate': {
        if (!fdPath || !inside(fdPath)) continue;
        const numbers = argText.split(',').map((s) => Number(s.trim()));
        const length = name === 'ftruncate' ? (numbers[1] as number) : (numbers[2] as number) + (numbers[3] as number);
        ops.push({ op: name === 'ftruncate' ? 'truncate' : 'allocate', fd, length });
        break;
      }
      case 'fsync':
      case 'fdatasync':
      case 'close':
        if (!fdPath || !inside(fdPath.replace(/\(deleted\)$/, ''))) continue;
        ops.push({ op: name === 'close' ? 'close' : 'sync', fd });
        break;
      case 'rename':
      case 'renameat':
      case 'renameat2':
      case 'link':
      case 'linkat': {
        const [from, to] = strings as [string, string];
        if (!inside(from) && !inside(to)) continue;
        ops.push({ op: name.startsWith('link') ? 'link' : 'rename', from: relative(from), to: relative(to) });
        break;
      }
      case 'unlink':
      case 'unlinkat':
      case 'mkdir':
      case 'mkdirat': {
        const path = strings[0] as string;
        if (!inside(path)) continue;
        ops.push(
          name.startsWith('mkdir') ? { op: 'mkdir', path: relative(path) } : { op: 'unlink', path: relative(path) },
        );
        break;
      }
    }
  }
  return ops;
}

interface Inode {
  data: Buffer;
  /** The bytes as of the last flush. */
  flushed: Buffer;
  /** The bytes after an ordered power loss: sizes as now, bytes as flushed, zeros where unflushed. */
  ordered: Buffer;
}

const newInode = (data = Buffer.alloc(0)): Inode => ({ data, flushed: data, ordered: data });

/** `bytes` cut or extended with zeros to `length`. */
function resized(bytes: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  bytes.copy(out, 0, 0, Math.min(length, bytes.length));
  return out;
}

const BYTES_AFTER = { 'process-crash': 'data', 'power-loss': 'flushed', 'power-loss-ordered': 'ordered' } as const;

/** The folder as the running process saw it and as the disk held it, after some calls. */
class FolderModel {
  /** Names (paths inside the folder) → files or subfolders, as the process sees them. */
  readonly names = new Map<string, Inode | 'folder'>();
  /** The names the disk holds: as of the folder's last flush. */
  flushedNames = new Map<string, Inode | 'folder'>();
  readonly #fds = new Map<number, { inode: Inode; path: string; position: number; append: boolean }>();

  constructor(initial: string) {
    const stack = [''];
    for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
      for (const name of readdirSync(join(initial, dir))) {
        const path = dir ? `${dir}/${name}` : name;
        if (lstatSync(join(initial, path)).isDirectory()) {
          this.names.set(path, 'folder');
          stack.push(path);
        } else {
          this.names.set(path, newInode(readFileSync(join(initial, path))));
        }
      }
    }
    this.flushedNames = new Map(this.names);
  }

  apply(op: FileOp): void {
    switch (op.op) {
      case 'create':
      case 'open': {
        let inode = this.names.get(op.path);
        if (op.path === '' || inode === 'folder') {
          this.#fds.set(op.fd, { inode: newInode(), path: op.path, position: 0, append: false });
          return;
        }
        if (!inode) {
          inode = newInode();
          this.names.set(op.path, inode);
        }
        if (op.truncate) {
          inode.data = Buffer.alloc(0);
          inode.ordered = Buffer.alloc(0);
        }
        this.#fds.set(op.fd, { inode, path: op.path, position: 0, append: op.append });
        return;
      }
      case 'write': {
        const fd = this.#fds.get(op.fd);
        if (!fd) return;
        const at = op.offset ?? (fd.append ? fd.inode.data.length : fd.position);
        const end = at + op.data.length;
        const data = Buffer.alloc(Math.max(end, fd.inode.data.length));
        fd.inode.data.copy(data);
        op.data.copy(data, at);
        fd.inode.data = data;
        fd.inode.ordered = resized(fd.inode.ordered, data.length); // the size is metadata; the bytes are not yet
        if (op.offset === undefined) fd.position = end;
        return;
      }
      case 'truncate':
      case 'allocate': {
        const fd = this.#fds.get(op.fd);
        if (!fd) return;
        const length = op.op === 'truncate' ? op.length : Math.max(op.length, fd.inode.data.length);
        fd.inode.data = resized(fd.inode.data, length);
        fd.inode.ordered = resized(fd.inode.ordered, length);
        return;
      }
      case 'sync': {
        const fd = this.#fds.get(op.fd);
        if (!fd) return;
        if (this.names.get(fd.path) === 'folder' || fd.path === '') {
          // A folder's flush makes its names durable (this model flushes all names: one folder level).
          this.flushedNames = new Map(this.names);
        } else {
          fd.inode.flushed = Buffer.from(fd.inode.data);
          fd.inode.ordered = fd.inode.flushed;
        }
        return;
      }
      case 'close':
        this.#fds.delete(op.fd);
        return;
      case 'rename': {
        const inode = this.names.get(op.from);
        if (inode === undefined) return;
        this.names.delete(op.from);
        this.names.set(op.to, inode);
        return;
      }
      case 'link': {
        const inode = this.names.get(op.from);
        if (inode !== undefined) this.names.set(op.to, inode);
        return;
      }
      case 'unlink':
        this.names.delete(op.path);
        return;
      case 'mkdir':
        this.names.set(op.path, 'folder');
        return;
    }
  }

  /** Writes the folder a machine would come back to after a crash of `mode` now. */
  materialize(mode: CrashMode, target: string): void {
    const names = mode === 'power-loss' ? this.flushedNames : this.names;
    mkdirSync(target, { recursive: true });
    const entries = [...names].sort(([a], [b]) => a.length - b.length);
    for (const [path, inode] of entries) {
      if (inode === 'folder') mkdirSync(join(target, path), { recursive: true });
      else writeFileSync(join(target, path), inode[BYTES_AFTER[mode]]);
    }
  }
}

/** A state to check: the folder after the first `calls` recorded calls, crashed in `mode`. */
export interface CrashState {
  calls: number;
  mode: CrashMode;
  /** The last call applied, for messages. */
  last: string;
  materialize(target: string): void;
}

/** Every cut of the recording (before the first call, after each call) in every mode. */
export function* crashStates(initial: string, ops: readonly FileOp[]): Generator<CrashState> {
  const model = new FolderModel(initial);
  for (let calls = 0; calls <= ops.length; calls++) {
    if (calls > 0) model.apply(ops[calls - 1] as FileOp);
    const last = calls === 0 ? 'nothing yet' : describeOp(ops[calls - 1] as FileOp);
    for (const mode of CRASH_MODES)
      yield { calls, mode, last, materialize: (target) => model.materialize(mode, target) };
  }
}

function describeOp(op: FileOp): string {
  switch (op.op) {
    case 'write':
      return `write of ${op.data.length} bytes to fd ${op.fd}`;
    case 'rename':
    case 'link':
      return `${op.op} ${op.from} -> ${op.to}`;
    case 'create':
    case 'open':
      return `${op.op} ${op.path}`;
    case 'unlink':
    case 'mkdir':
      return `${op.op} ${op.path}`;
    default:
      return `${op.op} fd ${op.fd}`;
  }
}
