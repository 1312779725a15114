import { describeTracker } from '@ckpt/testkit';
import { type PostgresServer, startPostgres } from '@ckpt/testkit/servers';
import { afterAll, beforeAll } from 'vitest';
import { connect } from '../src/index.js';

let server: PostgresServer;
let count = 0;
beforeAll(() => {
  server = startPostgres();
});
afterAll(() => server?.stop());

describeTracker({
  name: 'postgres',
  newDatabase: () => server.createDatabase(`conformance_${++count}`),
  connect: (url) => connect(url),
});
