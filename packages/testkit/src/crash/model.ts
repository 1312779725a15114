/** Replaying a record onto a model of the folder, and writing out the folder after a crash at each call. */

import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRASH_MODES, type CrashMode, type FileOp } from './types.js';

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
