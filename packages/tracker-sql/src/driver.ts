/**
 * What the engine needs from a database client: statements with `?`
 * placeholders, transactions on one pooled connection, and the few places
 * where SQL dialects differ. @ckpt/tracker-postgres and @ckpt/tracker-mysql
 * each implement it over their client library.
 */

export type SqlValue = string | number | null;

export interface SqlSession {
  /** Rows of a SELECT (or of `RETURNING`). Placeholders are `?`. */
  rows<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** A statement's affected row count. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /** An INSERT of one row, returning the new row's generated `id`. */
  insertId(sql: string, params: readonly SqlValue[]): Promise<number>;
  /** Inserts many rows of equal width into `table` (multi-row INSERT, unnest or COPY: whatever the server takes fastest). */
  insertRows(table: string, columns: readonly string[], rows: ColumnBatch): Promise<void>;
}

/** Rows as columns: `values[c][r]` is column c of row r. */
export interface ColumnBatch {
  length: number;
  values: ReadonlyArray<ArrayLike<SqlValue>>;
}

export interface Dialect {
  /** `INSERT … ` that skips rows whose unique key exists (affected count 0 then). */
  insertIgnore(table: string, columns: readonly string[]): string;
  /** `INSERT … ON CONFLICT/DUPLICATE KEY UPDATE` setting `update` from the new row. */
  upsert(table: string, columns: readonly string[], key: readonly string[], update: readonly string[]): string;
  /** A condition: the JSON config column's value at `path` equals `value` (same JSON type). */
  configEquals(
    column: string,
    path: readonly string[],
    value: string | number | boolean,
  ): {
    sql: string;
    params: SqlValue[];
  };
  /** A condition: the config has no value (or JSON null) at `path`. */
  configIsNull(column: string, path: readonly string[]): { sql: string; params: SqlValue[] };
  /** Integer division of two integer expressions. */
  intDiv(a: string, b: string): string;
  /** A double as the server stores it (NaN is always NULL). */
  encodeDouble(value: number): number | null;
  /** And back: NULL is NaN. */
  decodeDouble(value: unknown): number;
}

export interface SqlDriver {
  readonly kind: string;
  /** The database's URL with its password masked. */
  readonly location: string;
  readonly dialect: Dialect;
  /** Runs `work` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (session: SqlSession) => Promise<T>): Promise<T>;
  /** Runs `work` on one connection outside a transaction (reads). */
  session<T>(work: (session: SqlSession) => Promise<T>): Promise<T>;
  /** Holds a server-wide lock named `name` around `work` (migrations). */
  withLock<T>(name: string, work: (session: SqlSession) => Promise<T>): Promise<T>;
  /**
   * Turns a client error into a typed one (DatabaseError with its code,
   * NotFoundError, ...), with credentials masked. `retry` says whether the
   * same work may be tried again on a new connection (connection lost,
   * deadlock, serialization failure).
   */
  classify(error: unknown): { error: Error; retry: boolean };
  close(): Promise<void>;
}
