/**
 * A TCP proxy on 127.0.0.1 in front of the S3 server, to count what crosses
 * it and to inject faults: cut a response after N bytes, stall one, or go
 * away entirely as a killed server would.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface FaultProxy {
  endpoint: string;
  /** Bytes sent from the server to clients. */
  bytesDown: number;
  /** HTTP requests seen, by method. */
  requests: { GET: number; HEAD: number; PUT: number; POST: number };
  /** Cut the next response(s) carrying more than `afterBytes` bytes, `times` times. */
  dropNext(afterBytes: number, times?: number): void;
  /** Stop forwarding the next response after `afterBytes` bytes (a stalled connection). */
  stallNext(afterBytes: number): void;
  /** Answer the next `times` requests whose first line matches with `status` (500), without passing them on. */
  failNext(request: RegExp, times?: number, status?: number): void;
  /** Cut the connection of the next request whose first line matches, after `afterBytes` of it went up. */
  cutUploadNext(request: RegExp, afterBytes: number): void;
  /** Drop If-Match and If-None-Match from every request, as a server without conditional writes ignores them. */
  stripConditions: boolean;
  /** Requests failed or cut by failNext and cutUploadNext. */
  faultsServed: number;
  /** Close every connection and stop listening, as a killed server does. */
  kill(): Promise<void>;
  /** Listen again on the same port. */
  restart(): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  let drops: Array<{ afterBytes: number }> = [];
  let stall: { afterBytes: number } | undefined;
  let failures: Array<{ request: RegExp; status: number }> = [];
  let cut: { request: RegExp; afterBytes: number } | undefined;
  let server: Server;
  const proxy: FaultProxy = {
    endpoint: '',
    bytesDown: 0,
    requests: { GET: 0, HEAD: 0, PUT: 0, POST: 0 },
    dropNext(afterBytes, times = 1) {
      drops = Array.from({ length: times }, () => ({ afterBytes }));
    },
    stallNext(afterBytes) {
      stall = { afterBytes };
    },
    failNext(request, times = 1, status = 500) {
      failures = Array.from({ length: times }, () => ({ request, status }));
    },
    cutUploadNext(request, afterBytes) {
      cut = { request, afterBytes };
    },
    stripConditions: false,
    faultsServed: 0,
    async kill() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async restart() {
      server = makeServer();
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    reset() {
      proxy.bytesDown = 0;
      proxy.requests = { GET: 0, HEAD: 0, PUT: 0, POST: 0 };
      drops = [];
      stall = undefined;
      failures = [];
      cut = undefined;
      proxy.stripConditions = false;
      proxy.faultsServed = 0;
    },
    async close() {
      await proxy.kill().catch(() => undefined);
    },
  };

  const makeServer = () =>
    createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      sockets.add(client);
      sockets.add(upstream);
      const forget = () => {
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('close', forget);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      // Faults apply to the next GET's response, on whichever connection carries it.
      let sent = 0;
      let fault: 'drop' | 'stall' | undefined;
      let limit = Number.POSITIVE_INFINITY;
      let upLimit = Number.POSITIVE_INFINITY;
      client.on('data', (received: Buffer) => {
        let chunk = received;
        const text = chunk.toString('latin1');
        const firstLine = /^[A-Z]+ \S+/.exec(text)?.[0];
        const failure = failures[0];
        if (firstLine && failure?.request.test(firstLine)) {
          failures.shift();
          proxy.faultsServed++;
          client.end(`HTTP/1.1 ${failure.status} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
          upstream.destroy();
          return;
        }
        if (firstLine && cut?.request.test(firstLine)) {
          upLimit = cut.afterBytes;
          cut = undefined;
        }
        if (upLimit !== Number.POSITIVE_INFINITY) {
          upLimit -= chunk.length;
          if (upLimit < 0) {
            proxy.faultsServed++;
            client.destroy();
            upstream.destroy();
            return;
          }
        }
        const headEnd = text.indexOf('\r\n\r\n');
        if (proxy.stripConditions && firstLine && headEnd > 0) {
          const head = text.slice(0, headEnd).replace(/\r\nif-(?:none-)?match:[^\r]*/gi, '');
          chunk = Buffer.concat([Buffer.from(head, 'latin1'), chunk.subarray(headEnd)]);
        }
        for (const method of ['GET', 'HEAD', 'PUT', 'POST'] as const) {
          const matches = text.match(new RegExp(`(^|\\r\\n)${method} /`, 'g'));
          proxy.requests[method] += matches?.length ?? 0;
        }
        if (/(^|\r\n)GET \//.test(text)) {
          sent = 0;
          fault = undefined;
          limit = Number.POSITIVE_INFINITY;
          const drop = drops.shift();
          if (drop) {
            fault = 'drop';
            limit = drop.afterBytes;
          } else if (stall) {
            fault = 'stall';
            limit = stall.afterBytes;
            stall = undefined;
          }
        }
        upstream.write(chunk);
      });
      client.on('end', () => upstream.end());
      upstream.on('data', (chunk: Buffer) => {
        if (fault && sent + chunk.length > limit) {
          const head = chunk.subarray(0, Math.max(0, limit - sent));
          client.write(head);
          proxy.bytesDown += head.length;
          sent += head.length;
          if (fault === 'drop') {
            client.destroy();
            upstream.destroy();
          } else {
            upstream.pause(); // nothing more arrives: the client's watchdog must act
          }
          fault = undefined;
          return;
        }
        sent += chunk.length;
        proxy.bytesDown += chunk.length;
        client.write(chunk);
      });
      upstream.on('end', () => client.end());
    });

  server = makeServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  proxy.endpoint = `http://127.0.0.1:${port}`;
  return proxy;
}
