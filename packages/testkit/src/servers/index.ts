/**
 * @ckpt/testkit/servers: private PostgreSQL and MariaDB servers for the
 * tests of a tracker (and for benchmarks), each in a temporary folder on a
 * Unix socket, from the server programs installed on the machine.
 */

export { type MariadbServer, startMariadb } from './mariadb.js';
export { type PostgresServer, startPostgres } from './postgres.js';
