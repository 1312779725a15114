/**
 * Ordering records for a list: by a key read once per record, ties broken by
 * sequence, records without the key last. A short page (`limit` 10 of 50,000)
 * keeps only the best `count` seen so far, so it costs n log(count)
 * comparisons and no copy of the whole list.
 */
import type { StoredRecord } from './record.js';

export type SortKey = number | string | undefined;

/** Pages up to this long are selected as records arrive; longer ones are sorted at the end. */
const SELECTED_PAGE = 256;

export class OrderedPage {
  readonly #keys: SortKey[] = [];
  readonly #records: StoredRecord[] = [];
  readonly #selecting: boolean;

  /** Keeps the first `count` records (all of them with `Infinity`) in the order of `key`. */
  constructor(
    private readonly key: (record: StoredRecord) => SortKey,
    private readonly direction: 1 | -1,
    private readonly count: number,
  ) {
    this.#selecting = count <= SELECTED_PAGE;
  }

  #compare(x: SortKey, a: StoredRecord, y: SortKey, b: StoredRecord): number {
    if (x === y) return a.sequence - b.sequence;
    if (x === undefined) return 1;
    if (y === undefined) return -1;
    return (x < y ? -1 : 1) * this.direction;
  }

  offer(record: StoredRecord): void {
    const key = this.key(record);
    const keys = this.#keys;
    const records = this.#records;
    if (!this.#selecting) {
      keys.push(key);
      records.push(record);
      return;
    }
    const n = records.length;
    if (n === this.count && (n === 0 || this.#compare(key, record, keys[n - 1], records[n - 1] as StoredRecord) >= 0))
      return;
    let low = 0;
    let high = n;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#compare(key, record, keys[middle], records[middle] as StoredRecord) < 0) high = middle;
      else low = middle + 1;
    }
    keys.splice(low, 0, key);
    records.splice(low, 0, record);
    if (records.length > this.count) {
      keys.pop();
      records.pop();
    }
  }

  /** The records kept, in order. */
  records(): StoredRecord[] {
    if (this.#selecting) return this.#records.slice();
    const keys = this.#keys;
    const records = this.#records;
    const order = Array.from(records.keys()).sort((i, j) =>
      this.#compare(keys[i], records[i] as StoredRecord, keys[j], records[j] as StoredRecord),
    );
    return order.slice(0, this.count).map((i) => records[i] as StoredRecord);
  }
}
