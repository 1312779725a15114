/**
 * A SHA-256 taken on a worker thread, so that hashing an upload's parts does
 * not hold up the thread that drives its sockets. Parts live in shared
 * memory: the worker reads them while they are being sent, in the order
 * they were cut, and nothing is copied.
 */
import { Worker } from 'node:worker_threads';

const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hash = createHash('sha256');
parentPort.on('message', (message) => {
  if (message === 'digest') parentPort.postMessage(hash.digest('hex'));
  else hash.update(new Uint8Array(message.buffer, 0, message.length));
});
`;

export class BackgroundSha256 {
  readonly #worker = new Worker(WORKER, { eval: true });
  #failed: Error | undefined;

  constructor() {
    this.#worker.on('error', (error) => {
      this.#failed = error;
    });
  }

  /** A buffer of `size` bytes in shared memory, for a part that will be hashed here. */
  static allocate(size: number): Uint8Array {
    return new Uint8Array(new SharedArrayBuffer(size));
  }

  /** Hashes the first `length` bytes of `part`, which must come from `allocate` and not change afterwards. */
  update(part: Uint8Array, length = part.byteLength): void {
    if (!(part.buffer instanceof SharedArrayBuffer) || part.byteOffset !== 0)
      throw new TypeError('BackgroundSha256 hashes only whole buffers from allocate()');
    this.#worker.postMessage({ buffer: part.buffer, length });
  }

  /** The digest of everything updated, in order; the worker then stops. */
  async digest(): Promise<string> {
    try {
      if (this.#failed) throw this.#failed;
      const result = new Promise<string>((resolve, reject) => {
        this.#worker.once('message', resolve);
        this.#worker.once('error', reject);
      });
      this.#worker.postMessage('digest');
      return await result;
    } finally {
      await this.#worker.terminate();
    }
  }

  /** Stops the worker without a digest (an upload that failed). */
  async close(): Promise<void> {
    await this.#worker.terminate();
  }
}
