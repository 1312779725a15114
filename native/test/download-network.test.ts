// What real networks need from downloadRange: an HTTPS server whose CA is
// trusted only through the environment (SSL_CERT_FILE, as a corporate root
// would be), reached through an HTTP CONNECT proxy from HTTPS_PROXY, and
// NO_PROXY. Every server is on 127.0.0.1 and started here; each download runs
// in a child process, since proxies and roots are read from its environment.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canDownloadNatively } from '../src/index.js';
import { scratchDir } from './helpers.js';

const dir = scratchDir();
const distIndex = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const body = randomBytes(2 * 1024 * 1024 + 17);
const servers: Server[] = [];
const sockets = new Set<Socket>();
let httpsPort = 0;
let proxyPort = 0;
const tunnels: string[] = [];
const caFile = join(dir, 'ca.pem');

/** A CA and a certificate for 127.0.0.1 signed by it, made with openssl. */
function makeCertificates(): { key: Buffer; cert: Buffer } {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=ckpt test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  );
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'san.cnf',
    '-out',
    'server.pem',
  );
  return { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) };
}

async function listen(server: Server): Promise<number> {
  servers.push(server);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

beforeAll(async () => {
  const https = createHttpsServer(makeCertificates(), (req, res) => {
    const [, from, to] = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '') ?? [];
    const slice = body.subarray(Number(from ?? 0), Number(to ?? body.length - 1) + 1);
    res.writeHead(206, { 'content-length': slice.length }).end(slice);
  });
  httpsPort = await listen(https);
  // A forward proxy that only tunnels (CONNECT), as corporate proxies do for HTTPS.
  const proxy = createHttpServer((_req, res) => res.writeHead(405).end());
  proxy.on('connect', (req, client: Socket, head: Buffer) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
  });
  proxyPort = await listen(proxy);
});

afterAll(() => {
  for (const socket of sockets) socket.destroy();
  for (const server of servers) server.close();
});

/** Downloads bytes [offset, offset + length) of the HTTPS body in a child with `env`; the outcome. */
async function downloadInChild(env: Record<string, string>, offset: number, length: number) {
  const path = join(dir, `out-${offset}-${length}-${Object.keys(env).join('-')}`);
  writeFileSync(path, Buffer.alloc(length));
  const script = `
    const { downloadRange } = await import(${JSON.stringify(distIndex)});
    const [url, path, offset, length] = process.argv.slice(1);
    const range = 'bytes=' + offset + '-' + (Number(offset) + Number(length) - 1);
    downloadRange({ url, path, offset: 0, length: Number(length), headers: { Range: range }, stallMs: 10_000 }).done.then(
      (written) => console.log(JSON.stringify({ written })),
      (error) => console.log(JSON.stringify({ kind: error.kind, message: error.message })),
    );`;
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/_proxy$|^SSL_CERT_/i.test(k)));
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      script,
      `https://127.0.0.1:${httpsPort}/bucket/model.bin`,
      path,
      String(offset),
      String(length),
    ],
    { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  await once(child, 'close');
  return { result: JSON.parse(out.trim()) as { written?: number; kind?: string; message?: string }, path };
}

describe.skipIf(!canDownloadNatively())('downloadRange on real networks', () => {
  it('trusts a CA given by SSL_CERT_FILE, and refuses the server without it', async () => {
    const trusted = await downloadInChild({ SSL_CERT_FILE: caFile }, 1000, 300_000);
    expect(trusted.result).toEqual({ written: 300_000 });
    expect(readFileSync(trusted.path).equals(body.subarray(1000, 301_000))).toBe(true);

    const untrusted = await downloadInChild({}, 0, 10);
    expect(untrusted.result.kind).toBe('network');
    expect(untrusted.result.message).toMatch(/certificate|UnknownIssuer/i);
  });

  it('goes through the proxy named by HTTPS_PROXY, and around it for hosts in NO_PROXY', async () => {
    const proxy = `http://127.0.0.1:${proxyPort}`;
    const before = tunnels.length;
    const proxied = await downloadInChild({ SSL_CERT_FILE: caFile, HTTPS_PROXY: proxy }, 0, body.length);
    expect(proxied.result).toEqual({ written: body.length });
    expect(readFileSync(proxied.path).equals(body)).toBe(true);
    expect(tunnels.slice(before)).toEqual([`127.0.0.1:${httpsPort}`]);

    const direct = await downloadInChild({ SSL_CERT_FILE: caFile, HTTPS_PROXY: proxy, NO_PROXY: '127.0.0.1' }, 5, 50);
    expect(direct.result).toEqual({ written: 50 });
    expect(tunnels.length).toBe(before + 1);
  });

  it('reports a proxy that cannot be reached as a network failure', async () => {
    const { result } = await downloadInChild({ SSL_CERT_FILE: caFile, HTTPS_PROXY: 'http://127.0.0.1:1' }, 0, 10);
    expect(result.kind).toBe('network');
  });
});
