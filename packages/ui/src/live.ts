/**
 * Live updates: a page holds one server-sent event stream, and the server
 * says `change` when the files behind it change (the experiment's index and
 * journal, the tracking database and its write-ahead log). Polling a few
 * `stat`s every 250 ms is cheap, needs no platform file watcher, and sees
 * writes from other processes and other machines on shared storage alike.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parseDatabaseLocation } from '@ckpt/core';
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { INDEX_FILE, type Workspace } from './workspace.js';

const POLL_MS = 250;
/** More streams than this are refused: each one polls. */
export const MAX_STREAMS = 64;
let open = 0;

function identity(paths: string[]): string {
  return paths
    .map((path) => {
      const info = statSync(path, { throwIfNoEntry: false, bigint: true });
      return info ? `${info.ino}:${info.size}:${info.mtimeNs}` : '-';
    })
    .join('|');
}

/** The files a page about `experiment` (or about every experiment) depends on. */
export function watchedFiles(ws: Workspace, experiment: string | undefined): string[] {
  // A SQLite database changes with its files; a server database is not watched (pages show it as of their load).
  const location = parseDatabaseLocation(ws.settings.tracker.database);
  const files = location.kind === 'sqlite' ? [location.target, `${location.target}-wal`] : [];
  if (experiment && ws.has(experiment)) {
    const folder = join(ws.root, experiment);
    files.push(join(folder, INDEX_FILE), join(folder, `${INDEX_FILE}.journal`));
  } else {
    files.push(ws.root);
  }
  return files;
}

export function events(c: Context, ws: Workspace): Response | Promise<Response> {
  if (open >= MAX_STREAMS) return c.text(`refused: ${MAX_STREAMS} live streams are open already`, 503);
  const experiment = c.req.query('experiment') || undefined;
  return streamSSE(c, async (stream) => {
    open++;
    let closed = false;
    stream.onAbort(() => {
      closed = true;
    });
    try {
      const files = watchedFiles(ws, experiment);
      let last = identity(files);
      await stream.writeSSE({ event: 'ready', data: last === '' ? '-' : 'ok' });
      while (!closed) {
        await stream.sleep(POLL_MS);
        const now = identity(files);
        if (now !== last) {
          last = now;
          await stream.writeSSE({ event: 'change', data: String(Date.now()) });
        }
      }
    } finally {
      open--;
    }
  });
}
