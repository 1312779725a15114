/** @ckpt/tracker-sql's driver over node-postgres: a pool, `?` placeholders, bulk inserts through `unnest`. */
import type { ColumnBatch, Dialect, SqlDriver, SqlSession, SqlValue } from '@ckpt/tracker-sql';
import pg from 'pg';
import { type CopyType, copyRows } from './copy.js';
import { classify } from './errors.js';

export interface PostgresOptions {
  /** Connections in the pool (default 4). */
  poolSize?: number;
  /** Give up connecting after this long (default 10 s). */
  connectTimeoutMs?: number;
}

/** bigint and numeric as JavaScript numbers: ids, counts and steps stay below 2^53. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === pg.types.builtins.INT8 || oid === pg.types.builtins.NUMERIC) return Number;
    return pg.types.getTypeParser(oid, format);
  },
};

/** Column types for COPY, per table the engine bulk-inserts into. */
const COLUMN_TYPES: Record<string, Record<string, CopyType>> = {
  metric_points: { series_id: 'int8', seq: 'int8', step: 'int8', value: 'float8', logged_at: 'int8' },
};

/** Rows per COPY: about 3 MB of data each. */
const ROWS_PER_COPY = 50_000;

/** `?` → `$1`, `$2`, … (the engine's SQL has no `?` inside strings). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

const dialect: Dialect = {
  insertIgnore: (table, columns) =>
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) ON CONFLICT DO NOTHING`,
  upsert: (table, columns, key, update) =>
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})
     ON CONFLICT (${key.join(', ')}) DO UPDATE SET ${update.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`,
  configEquals: (column, path, value) => ({
    sql: `${column} #> ?::text[] = ?::jsonb`,
    params: [`{${path.join(',')}}`, JSON.stringify(value)],
  }),
  configIsNull: (column, path) => ({
    sql: `${column} #> ?::text[] IS NULL OR ${column} #> ?::text[] = 'null'::jsonb`,
    params: [`{${path.join(',')}}`, `{${path.join(',')}}`],
  }),
  intDiv: (a, b) => `((${a}) / (${b}))`,
  encodeDouble: (value) => (Number.isNaN(value) ? null : value),
  decodeDouble: (value) => (value === null || value === undefined ? Number.NaN : Number(value)),
};

function sessionOf(client: pg.PoolClient): SqlSession {
  return {
    async rows<T>(sql: string, params: readonly SqlValue[] = []) {
      return (await client.query(numbered(sql), params as SqlValue[])).rows as T[];
    },
    async run(sql, params = []) {
      return (await client.query(numbered(sql), params as SqlValue[])).rowCount ?? 0;
    },
    async insertId(sql, params) {
      const result = await client.query(`${numbered(sql)} RETURNING id`, params as SqlValue[]);
      return Number(result.rows[0]?.id);
    },
    async insertRows(table: string, columns: readonly string[], batch: ColumnBatch) {
      const types = COLUMN_TYPES[table];
      if (!types) throw new TypeError(`no column types for bulk inserts into ${table}`);
      await copyRows(
        client,
        table,
        columns,
        columns.map((c) => types[c] as CopyType),
        batch,
        ROWS_PER_COPY,
      );
    },
  };
}

export class PostgresDriver implements SqlDriver {
  readonly kind = 'postgres';
  readonly dialect = dialect;
  readonly location: string;
  readonly #pool: pg.Pool;

  constructor(url: string, location: string, options: PostgresOptions = {}) {
    this.location = location;
    this.#pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 4,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      allowExitOnIdle: true, // the idle timer does not keep the process alive either
      types,
    });
    // A connection the server drops must not crash the process: the query on it fails (and is
    // retried on a new one), and an idle one is replaced at the next checkout.
    this.#pool.on('error', () => undefined);
    this.#pool.on('connect', (client) => client.on('error', () => undefined));
  }

  async #with<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    // A connection keeps the process alive only while it works: a script that ends without
    // close() exits (its queued points written first, on 'beforeExit').
    const socket = (client as unknown as { connection?: { stream?: { ref?(): void; unref?(): void } } }).connection
      ?.stream;
    socket?.ref?.();
    let broken: Error | undefined;
    try {
      return await work(client);
    } catch (error) {
      // A connection that failed mid-way is thrown away, not returned to the pool.
      if (classify(error, this.location).retry) broken = error as Error;
      throw error;
    } finally {
      socket?.unref?.();
      client.release(broken);
    }
  }

  transaction<T>(work: (session: SqlSession) => Promise<T>): Promise<T> {
    return this.#with(async (client) => {
      await client.query('BEGIN');
      try {
        const result = await work(sessionOf(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  session<T>(work: (session: SqlSession) => Promise<T>): Promise<T> {
    return this.#with((client) => work(sessionOf(client)));
  }

  withLock<T>(name: string, work: (session: SqlSession) => Promise<T>): Promise<T> {
    // DDL is transactional here: the migrations and the lock end together.
    return this.transaction(async (s) => {
      await s.rows('SELECT pg_advisory_xact_lock(hashtext(?))', [name]);
      return work(s);
    });
  }

  classify(error: unknown): { error: Error; retry: boolean } {
    return classify(error, this.location);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
