/**
 * Budgets for walking data decoded from files, so that a small hostile file
 * cannot make ckpt use unbounded memory, time or stack. Each can be raised for
 * a file you trust: by an environment variable read when ckpt loads, or in
 * code by setting `LIMITS.<budget>` (a plain object, read at each use).
 */
import { LimitError } from './errors.js';

function fromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  const value = text === undefined ? Number.NaN : Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : fallback;
}

/** Each budget: the environment variable that raises it, and its default. */
const BUDGETS = {
  /** Nodes (values, branches and leaves) one walk over a state tree may visit: shared branches count each time. */
  treeNodes: ['CKPT_MAX_TREE_NODES', 10_000_000],
  /** How deep decoded data may nest (state trees, stored structures, pickles). */
  depth: ['CKPT_MAX_DEPTH', 1000],
  /** Opcodes one pickle may run (time): a state dict of 100,000 tensors runs about a million. */
  pickleOps: ['CKPT_MAX_PICKLE_OPS', 100_000_000],
  /** Values one pickle may create (memory): dicts, lists, tuples, strings, numbers. */
  pickleObjects: ['CKPT_MAX_PICKLE_OBJECTS', 10_000_000],
  /** Bytes of one string or text record decoded from a file (a GLOBAL line, a version record, a pickled str). */
  stringBytes: ['CKPT_MAX_STRING_BYTES', 64 << 20],
  /** Bytes all deflated entries of one zip archive may inflate to, together. */
  inflatedBytes: ['CKPT_MAX_INFLATED_BYTES', 2 ** 30],
} as const satisfies Record<string, readonly [string, number]>;

type Budget = keyof typeof BUDGETS;

/** The budgets in force: each from its variable, else its default. */
export const LIMITS = Object.fromEntries(
  Object.entries(BUDGETS).map(([budget, [variable, fallback]]) => [budget, fromEnv(variable, fallback)]),
) as Record<Budget, number>;

/** The environment variable that raises each budget. */
export const LIMIT_VARIABLES = Object.fromEntries(
  Object.entries(BUDGETS).map(([budget, [variable]]) => [budget, variable]),
) as Readonly<Record<Budget, string>>;

/** The error for a budget that was exceeded, saying how to raise it. */
export function limitExceeded(what: string, budget: Budget): LimitError {
  return new LimitError(
    `${what}: more than the ${LIMITS[budget].toLocaleString('en-US')} allowed. If you trust this file, raise the budget with ${LIMIT_VARIABLES[budget]} (or LIMITS.${budget} from @ckpt/core in code)`,
    { expected: `at most ${LIMITS[budget]}`, found: 'more' },
  );
}
