/** Recording a command's file-changing system calls under a folder with strace, and parsing the record. */

import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FileOp } from './types.js';

export type { FileOp } from './types.js';

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
  try {
    if (run.status !== 0) throw new Error(`the recorded command failed (${run.status}): ${run.stderr}`);
    return parseTrace(readFileSync(log, 'latin1'), folder);
  } finally {
    rmSync(log, { force: true });
  }
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
