import { readFileSync } from 'node:fs';
import { describeTrackerServer } from '@ckpt/testkit';
import { startPostgres } from '@ckpt/testkit/servers';

describeTrackerServer({
  name: 'postgres',
  module: '@ckpt/tracker-postgres',
  start: () => startPostgres(),
  versionOne: readFileSync(new URL('./fixtures/v1.sql', import.meta.url), 'utf8'),
});
