import type { StorageBackend } from '../../src/index.js';

export interface TestBackendOptions {
  name?: string;
  /** Default `.ckpt-test`. */
  extension?: string;
  /** Throw instead of writing when this returns true for the path. */
  failWhen?: (path: string) => boolean;
  /** Wait this long before writing. */
  delayMs?: number;
}

export function testBackend(options?: TestBackendOptions): StorageBackend;
