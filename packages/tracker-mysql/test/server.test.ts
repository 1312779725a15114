import { readFileSync } from 'node:fs';
import { describeTrackerServer } from '@ckpt/testkit';
import { startMariadb } from '@ckpt/testkit/servers';

describeTrackerServer({
  name: 'mariadb',
  module: '@ckpt/tracker-mysql',
  start: () => startMariadb(),
  versionOne: readFileSync(new URL('./fixtures/v1.sql', import.meta.url), 'utf8'),
});
