/** Starting and stopping the server: one process, one port, nothing else to run. */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Settings } from '@ckpt/core';
import { CONFIG_NAMES, InvalidArgumentError, loadSettings } from '@ckpt/core';
import { serve } from '@hono/node-server';
import { buildApp } from './app.js';
import { isLoopback } from './security.js';
import { Workspace } from './workspace.js';

export interface UiOptions {
  settings: Settings;
  /** Default 127.0.0.1. Any other address requires the token. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Exports go into folders under this one (default `<checkpoint directory>/exports`). */
  exportRoot?: string;
  /** The token for a non-loopback host (default: random). */
  token?: string;
  /** The config file the settings page writes (default: the one the settings came from, else ./ckpt.config.yaml). */
  configPath?: string;
  /** Reads the settings again after the settings page saves (default: the same file, this environment). */
  reloadSettings?: () => Settings;
}

export interface UiServer {
  /** The address to open, with `?token=` when one is needed. */
  url: string;
  host: string;
  port: number;
  token: string | undefined;
  close(): Promise<void>;
}

export async function startUi(options: UiOptions): Promise<UiServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`--port must be a whole number from 0 to 65535`, { found: String(port) });
  }
  const loopback = isLoopback(host);
  const token = loopback ? undefined : (options.token ?? randomBytes(24).toString('base64url'));
  const workspace = new Workspace(options.settings);
  let bound = 0;
  const hostName = host.includes(':') ? `[${host}]` : host;
  const hosts = () => {
    const names = new Set([`${hostName}:${bound}`.toLowerCase()]);
    if (loopback) for (const alias of ['127.0.0.1', 'localhost', '[::1]']) names.add(`${alias}:${bound}`);
    return names;
  };
  const configPath = options.configPath ?? options.settings.source ?? join(process.cwd(), CONFIG_NAMES[0] as string);
  const app = buildApp({
    workspace,
    guard: { hosts, token },
    exportRoot: options.exportRoot ?? join(workspace.root, 'exports'),
    configPath,
    reloadSettings: options.reloadSettings ?? (() => loadSettings({ configFile: configPath })),
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: host, port }, () => resolve(s));
    s.once('error', reject);
  });
  bound = (server.address() as AddressInfo).port;
  const url = `http://${hostName}:${bound}/${token ? `?token=${token}` : ''}`;
  return {
    url,
    host,
    port: bound,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => {
          workspace.close().then(resolve, resolve);
        });
      }),
  };
}
