/**
 * Budgets for walking data decoded from files, so that a small hostile file
 * cannot make ckpt use unbounded memory, time or stack. Each can be raised for
 * a file you trust, by an environment variable read when ckpt loads.
 */
import { LimitError } from './errors.js';

function fromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  const value = text === undefined ? Number.NaN : Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : fallback;
}

export const LIMITS = {
  /** Nodes (values, branches and leaves) one walk over a state tree may visit: shared branches count each time. */
  treeNodes: fromEnv('CKPT_MAX_TREE_NODES', 50_000_000),
  /** How deep decoded data may nest (state trees, stored structures, pickles). */
  depth: fromEnv('CKPT_MAX_DEPTH', 1000),
};

/** The error for a budget that was exceeded, saying how to raise it. */
export function limitExceeded(what: string, budget: keyof typeof LIMITS, variable: string): LimitError {
  return new LimitError(
    `${what}: more than the ${LIMITS[budget].toLocaleString('en-US')} allowed. If you trust this file, raise the budget with ${variable}`,
    { expected: `at most ${LIMITS[budget]}`, found: 'more' },
  );
}
