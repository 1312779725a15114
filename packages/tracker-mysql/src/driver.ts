/** @ckpt/tracker-sql's driver over mysql2: a pool, client-side parameter escaping, multi-row INSERTs. */
import { DatabaseError } from '@ckpt/core';
import type { ColumnBatch, Dialect, SqlDriver, SqlSession, SqlValue } from '@ckpt/tracker-sql';
import mysql from 'mysql2/promise';
import { classify } from './errors.js';

export interface MysqlOptions {
  /** Connections in the pool (default 4). */
  poolSize?: number;
  /** Give up connecting after this long (default 10 s). */
  connectTimeoutMs?: number;
}

/** Rows per multi-row INSERT: about 300 KB of SQL, far below the server's 16 MB packet limit. */
const ROWS_PER_STATEMENT = 5_000;
/** MySQL's DOUBLE has no infinities: they are stored as the largest finite values and read back as infinities. */
const LARGEST = Number.MAX_VALUE;

function jsonPath(path: readonly string[]): string {
  return `$${path.map((part) => `."${part}"`).join('')}`;
}

const dialect: Dialect = {
  // Not INSERT IGNORE: that would also turn other errors (a missing parent row, a value too long) into warnings.
  insertIgnore: (table, columns) =>
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})
     ON DUPLICATE KEY UPDATE ${columns[0]} = ${columns[0]}`,
  upsert: (table, columns, _key, update) =>
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})
     ON DUPLICATE KEY UPDATE ${update.map((c) => `${c} = VALUES(${c})`).join(', ')}`,
  configEquals(column, path, value) {
    const at = jsonPath(path);
    if (typeof value === 'number') {
      return {
        sql: `JSON_TYPE(JSON_EXTRACT(${column}, ?)) IN ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL') AND JSON_EXTRACT(${column}, ?) + 0 = ?`,
        params: [at, at, value],
      };
    }
    if (typeof value === 'boolean') {
      return {
        sql: `JSON_TYPE(JSON_EXTRACT(${column}, ?)) = 'BOOLEAN' AND CONCAT(JSON_EXTRACT(${column}, ?), '') = ?`,
        params: [at, at, String(value)],
      };
    }
    return {
      sql: `JSON_TYPE(JSON_EXTRACT(${column}, ?)) = 'STRING' AND JSON_UNQUOTE(JSON_EXTRACT(${column}, ?)) = ?`,
      params: [at, at, value],
    };
  },
  configIsNull: (column, path) => ({
    sql: `JSON_EXTRACT(${column}, ?) IS NULL OR JSON_TYPE(JSON_EXTRACT(${column}, ?)) = 'NULL'`,
    params: [jsonPath(path), jsonPath(path)],
  }),
  intDiv: (a, b) => `((${a}) DIV (${b}))`,
  encodeDouble: (value) =>
    Number.isNaN(value) ? null : value === Infinity ? LARGEST : value === -Infinity ? -LARGEST : value,
  decodeDouble(value) {
    if (value === null || value === undefined) return Number.NaN;
    const n = Number(value);
    return n === LARGEST ? Infinity : n === -LARGEST ? -Infinity : n;
  },
};

type Connection = mysql.PoolConnection;
type Result = mysql.ResultSetHeader;

function sessionOf(connection: Connection): SqlSession {
  return {
    async rows<T>(sql: string, params: readonly SqlValue[] = []) {
      const [rows] = await connection.query(sql, params as SqlValue[]);
      return rows as T[];
    },
    async run(sql, params = []) {
      const [result] = await connection.query(sql, params as SqlValue[]);
      return (result as Result).affectedRows;
    },
    async insertId(sql, params) {
      const [result] = await connection.query(sql, params as SqlValue[]);
      return Number((result as Result).insertId);
    },
    async insertRows(table: string, columns: readonly string[], batch: ColumnBatch) {
      const sql = `INSERT INTO ${table} (${columns.join(', ')}) VALUES ?`;
      for (let start = 0; start < batch.length; start += ROWS_PER_STATEMENT) {
        const end = Math.min(batch.length, start + ROWS_PER_STATEMENT);
        const rows: SqlValue[][] = [];
        for (let r = start; r < end; r++) rows.push(batch.values.map((column) => column[r] as SqlValue));
        await connection.query(sql, [rows]);
      }
    },
  };
}

/** The pool's settings from a `mysql://user:password@host:port/database?socket=/path` URL. */
function poolSettings(url: string, location: string, options: MysqlOptions): mysql.PoolOptions {
  const parsed = new URL(url);
  const socketPath = parsed.searchParams.get('socket') ?? undefined;
  for (const key of parsed.searchParams.keys()) {
    if (key !== 'socket') {
      throw new DatabaseError(`unknown parameter ${JSON.stringify(key)} in ${location}`, {
        code: 'CKPT_DATABASE_URL',
        expected: 'socket=/path/to/mysqld.sock, or none',
      });
    }
  }
  return {
    host: parsed.hostname || 'localhost',
    port: parsed.port ? Number(parsed.port) : 3306,
    ...(socketPath ? { socketPath } : {}),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database: decodeURIComponent(parsed.pathname.slice(1)),
    connectionLimit: options.poolSize ?? 4,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    charset: 'utf8mb4_bin',
    supportBigNumbers: true,
    decimalNumbers: true,
    // Affected rows are rows changed, not rows matched: an upsert that found its row reports 0.
    flags: ['-FOUND_ROWS'],
  };
}

export class MysqlDriver implements SqlDriver {
  readonly kind = 'mysql';
  readonly dialect = dialect;
  readonly location: string;
  readonly #pool: mysql.Pool;

  constructor(url: string, location: string, options: MysqlOptions = {}) {
    this.location = location;
    this.#pool = mysql.createPool(poolSettings(url, location, options));
    // An idle connection the server drops must not crash the process.
    this.#pool.on('connection', (connection) => connection.on('error', () => undefined));
  }

  async #with<T>(work: (connection: Connection) => Promise<T>): Promise<T> {
    const connection = await this.#pool.getConnection();
    // A connection keeps the process alive only while it works: a script that ends without
    // close() exits (its queued points written first, on 'beforeExit').
    const socket = (connection as unknown as { connection?: { stream?: { ref?(): void; unref?(): void } } }).connection
      ?.stream;
    socket?.ref?.();
    try {
      const result = await work(connection);
      socket?.unref?.();
      connection.release();
      return result;
    } catch (error) {
      socket?.unref?.();
      // A connection that failed mid-way is thrown away, not returned to the pool.
      if (classify(error, this.location).retry) connection.destroy();
      else connection.release();
      throw error;
    }
  }

  transaction<T>(work: (session: SqlSession) => Promise<T>): Promise<T> {
    return this.#with(async (connection) => {
      // Each statement sees what others committed before it, as in PostgreSQL (MySQL's default,
      // REPEATABLE READ, keeps one snapshot for the whole transaction).
      await connection.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await connection.beginTransaction();
      try {
        const result = await work(sessionOf(connection));
        await connection.commit();
        return result;
      } catch (error) {
        await connection.rollback().catch(() => undefined);
        throw error;
      }
    });
  }

  session<T>(work: (session: SqlSession) => Promise<T>): Promise<T> {
    return this.#with((connection) => work(sessionOf(connection)));
  }

  withLock<T>(name: string, work: (session: SqlSession) => Promise<T>): Promise<T> {
    // DDL commits on its own here: the lock (held by this connection) keeps other openers out meanwhile.
    return this.#with(async (connection) => {
      const session = sessionOf(connection);
      const [got] = await session.rows<{ got: unknown }>('SELECT GET_LOCK(?, 60) AS got', [name]);
      if (Number(got?.got) !== 1) {
        throw new DatabaseError(`waited 60 s for another process to finish migrating ${this.location}`, {
          path: this.location,
        });
      }
      try {
        return await work(session);
      } finally {
        await session.rows('SELECT RELEASE_LOCK(?) AS released', [name]).catch(() => undefined);
      }
    });
  }

  classify(error: unknown): { error: Error; retry: boolean } {
    return classify(error, this.location);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
