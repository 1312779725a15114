/** `ckpt ui`: serves the web interface until interrupted. */
import { spawn } from 'node:child_process';
import { InvalidArgumentError, shown } from '@ckpt/core';
import type { Context } from '../context.js';

export async function uiCommand(ctx: Context, opts: { port?: string; host?: string; open?: boolean }): Promise<void> {
  const port = opts.port === undefined ? 0 : Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError('--port must be a whole number from 0 to 65535', { found: shown(opts.port) });
  }
  const { startUi } = await import('@ckpt/ui');
  const server = await startUi({
    settings: ctx.config,
    reloadSettings: ctx.reloadConfig,
    port,
    ...(opts.host ? { host: opts.host } : {}),
  });
  ctx.out.result({ url: server.url, host: server.host, port: server.port }, () => {
    ctx.out.line(`ckpt ui: ${server.url}`);
    if (server.token) ctx.out.line('Listening beyond this machine: every request needs the token in this URL.');
    ctx.out.line('Ctrl-C stops it.');
  });
  if (opts.open)
    spawn('xdg-open', [server.url], { stdio: 'ignore', detached: true })
      .on('error', () => undefined)
      .unref();
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      server.close().then(resolve, resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
