/**
 * Retrying work that failed because the connection went away (or the server
 * chose it as a deadlock victim). Only work that is safe to run twice is
 * retried: every write of the engine is an upsert, or carries a key the
 * server remembers (metric batches), so a commit whose answer was lost is
 * recognised instead of repeated.
 */
import { CkptError } from '@ckpt/core';
import type { SqlDriver } from './driver.js';

export interface RetryOptions {
  /** Keep trying this long after the first failure (default 30 s; 0: never retry). */
  retryForMs?: number;
  /** Called before each new attempt (for logs and tests). */
  onRetry?: (info: { attempt: number; error: Error; delayMs: number }) => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function withRetries<T>(driver: SqlDriver, options: RetryOptions, work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + (options.retryForMs ?? 30_000);
  for (let attempt = 1, delay = 50; ; attempt++, delay = Math.min(delay * 2, 1000)) {
    try {
      return await work();
    } catch (raw) {
      if (raw instanceof CkptError) throw raw; // ours: already typed, and not a connection problem
      const { error, retry } = driver.classify(raw);
      const remaining = deadline - Date.now();
      if (!retry || remaining <= 0) throw error;
      const delayMs = Math.min(delay, remaining);
      options.onRetry?.({ attempt, error, delayMs });
      await sleep(delayMs);
    }
  }
}
