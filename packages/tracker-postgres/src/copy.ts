/**
 * Bulk inserts as `COPY … FROM STDIN (FORMAT binary)`: the server reads each
 * number as its 8 bytes instead of parsing text, the fastest way into a
 * table PostgreSQL has. Columns are int8 or float8 (all the engine bulk-inserts).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ColumnBatch, SqlValue } from '@ckpt/tracker-sql';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

export type CopyType = 'int8' | 'float8';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const TWO_32 = 2 ** 32;

/** The binary COPY stream of rows `start..end` of `batch`. */
export function binaryRows(types: readonly CopyType[], batch: ColumnBatch, start: number, end: number): Buffer {
  const width = types.length;
  const buffer = Buffer.allocUnsafe(SIGNATURE.length + 8 + (end - start) * (2 + width * 12) + 2);
  let at = SIGNATURE.copy(buffer, 0);
  at = buffer.writeInt32BE(0, at); // flags
  at = buffer.writeInt32BE(0, at); // header extension length
  for (let row = start; row < end; row++) {
    at = buffer.writeInt16BE(width, at);
    for (let c = 0; c < width; c++) {
      const value = (batch.values[c] as ArrayLike<SqlValue>)[row];
      if (value === null || value === undefined) {
        at = buffer.writeInt32BE(-1, at);
        continue;
      }
      if (typeof value !== 'number') throw new TypeError('bulk inserts take numbers only');
      at = buffer.writeInt32BE(8, at);
      if (types[c] === 'float8') {
        at = buffer.writeDoubleBE(value, at);
      } else {
        // A whole number below 2^53, written as two 32-bit halves (no BigInt per value).
        if (!Number.isSafeInteger(value)) throw new RangeError(`${value} is not a whole number for an int8 column`);
        const high = Math.floor(value / TWO_32);
        at = buffer.writeInt32BE(high, at);
        at = buffer.writeUInt32BE(value - high * TWO_32, at);
      }
    }
  }
  at = buffer.writeInt16BE(-1, at); // end of data
  return buffer.subarray(0, at);
}

export async function copyRows(
  client: pg.PoolClient,
  table: string,
  columns: readonly string[],
  types: readonly CopyType[],
  batch: ColumnBatch,
  rowsPerCopy: number,
): Promise<void> {
  for (let start = 0; start < batch.length; start += rowsPerCopy) {
    const end = Math.min(batch.length, start + rowsPerCopy);
    const sink = client.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN (FORMAT binary)`));
    await pipeline(Readable.from([binaryRows(types, batch, start, end)]), sink);
  }
}
