import { describeTracker } from '@ckpt/testkit';
import { type MariadbServer, startMariadb } from '@ckpt/testkit/servers';
import { afterAll, beforeAll } from 'vitest';
import { connect } from '../src/index.js';

let server: MariadbServer;
let count = 0;
beforeAll(async () => {
  server = await startMariadb();
});
afterAll(async () => {
  await server?.stop();
});

describeTracker({
  name: 'mysql',
  newDatabase: () => server.createDatabase(`conformance_${++count}`),
  connect: (url) => connect(url),
});
