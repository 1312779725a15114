/**
 * What a save asks of the existing records — is a file name taken, which
 * record is flagged best and which latest — kept current from the journal
 * entries each change writes, so a save does not scan every record (its cost
 * must not grow with the experiment's history). Built once when the index is
 * read, in one pass.
 */
import type { StoredRecord } from './record.js';

export class RecordFacts {
  readonly #byId = new Map<string, StoredRecord>();
  readonly #files = new Set<string>();
  #best: string | undefined;
  #latest: string | undefined;

  constructor(records: readonly StoredRecord[]) {
    for (const record of records) this.put(record);
  }

  put(record: StoredRecord): void {
    const previous = this.#byId.get(record.id);
    if (previous && previous.file !== record.file) this.#files.delete(previous.file);
    this.#byId.set(record.id, record);
    this.#files.add(record.file);
    if (record.isBest) this.#best = record.id;
    else if (this.#best === record.id) this.#best = undefined;
    if (record.isLatest) this.#latest = record.id;
    else if (this.#latest === record.id) this.#latest = undefined;
  }

  delete(id: string): void {
    const previous = this.#byId.get(id);
    if (!previous) return;
    this.#byId.delete(id);
    this.#files.delete(previous.file);
    if (this.#best === id) this.#best = undefined;
    if (this.#latest === id) this.#latest = undefined;
  }

  hasFile(name: string): boolean {
    return this.#files.has(name);
  }

  /** The record flagged best, as of the last write. */
  get best(): StoredRecord | undefined {
    return this.#best === undefined ? undefined : this.#byId.get(this.#best);
  }

  /** The record flagged latest, as of the last write. */
  get latest(): StoredRecord | undefined {
    return this.#latest === undefined ? undefined : this.#byId.get(this.#latest);
  }
}
