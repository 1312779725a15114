/**
 * The fuzz runner: a fast-check property with a fixed seed and a bounded
 * count by default (so `npm test` is reproducible and short), and the
 * property every reader of outside bytes must hold: it returns or throws a
 * typed `CkptError`, within a time budget, without the process's peak memory
 * running away. `CKPT_FUZZ_SEED` picks another seed and `CKPT_FUZZ_SCALE`
 * multiplies every target's count, which turns the same tests into a longer
 * campaign (`tools/fuzz/campaign.mjs`).
 *
 * A failing byte input is written to the target's regression folder and
 * replayed before the generated inputs on every later run: commit it with
 * the fix.
 */

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CkptError } from '@ckpt/core';
import fc from 'fast-check';

export interface FuzzOptions<T> {
  /** Inputs in a default run (times `CKPT_FUZZ_SCALE`). */
  runs: number;
  /** Refuses an input that takes longer than this: a hang guard, far above the normal time. */
  budgetMs?: number;
  /**
   * Fails the run when the process's peak resident memory grew by more than
   * this while it ran (default 512 MiB): small inputs must not make the code
   * under test allocate and fill gigabytes, whatever sizes they declare.
   */
  peakMemoryGrowthBytes?: number;
  /**
   * A folder of byte inputs that once failed: replayed first, and where a new
   * failing byte input is written. Only for targets whose inputs are bytes.
   */
  regressions?: string;
  /** The bytes of an input, to save it when it fails (byte targets only). */
  bytesOf?: (input: T) => Uint8Array;
  /** An input from saved bytes, to replay a regression file (byte targets only). */
  fromBytes?: (bytes: Uint8Array) => T;
}

/** What a run did: printed, and returned for tests that assert on coverage. */
export interface FuzzSummary {
  target: string;
  seed: number;
  executions: number;
  accepted: number;
  refused: number;
  /** Refusals by error code. */
  byCode: Record<string, number>;
  replayed: number;
  /** How much the process's peak resident memory grew during the run. */
  peakMemoryGrowthBytes: number;
}

const DEFAULT_SEED = 2020;

function envNumber(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a whole number, not ${text}`);
  return value;
}

/** The run's seed: `CKPT_FUZZ_SEED`, else the fixed default. */
export function fuzzSeed(): number {
  return envNumber('CKPT_FUZZ_SEED') ?? DEFAULT_SEED;
}

/**
 * Runs `check` on `runs` inputs from `arbitrary`: each must return (the
 * input is accepted) or throw a `CkptError` (refused) within the budget; anything else
 * thrown, or a property failure the target throws, fails the run with the
 * shrunk input. Returns the tally, also printed as one line.
 */
export async function fuzz<T>(
  target: string,
  arbitrary: fc.Arbitrary<T>,
  check: (input: T) => unknown,
  options: FuzzOptions<T>,
): Promise<FuzzSummary> {
  const seed = fuzzSeed();
  const summary: FuzzSummary = {
    target,
    seed,
    executions: 0,
    accepted: 0,
    refused: 0,
    byCode: {},
    replayed: 0,
    peakMemoryGrowthBytes: 0,
  };
  const peakBefore = peakResidentBytes();
  const budgetMs = options.budgetMs ?? 10_000;
  const once = async (input: T): Promise<void> => {
    const started = performance.now();
    const outcome = await outcomeOf(() => check(input));
    const took = performance.now() - started;
    if (took > budgetMs)
      throw new Error(`${target}: one input took ${Math.round(took)} ms, past the ${budgetMs} ms budget`);
    summary.executions++;
    if (outcome instanceof CkptError) {
      summary.refused++;
      summary.byCode[outcome.code] = (summary.byCode[outcome.code] ?? 0) + 1;
    } else summary.accepted++;
  };

  for (const [name, bytes] of regressionFiles(options.regressions)) {
    if (!options.fromBytes) throw new Error(`${target}: regression files need fromBytes`);
    try {
      await once(options.fromBytes(bytes));
    } catch (error) {
      throw new Error(`${target}: the regression file ${name} fails again: ${describe(error)}`, { cause: error });
    }
    summary.replayed++;
  }

  const runs = options.runs * (envNumber('CKPT_FUZZ_SCALE') ?? 1);
  const details = await fc.check(fc.asyncProperty(arbitrary, once), { seed, numRuns: runs, endOnFailure: true });
  summary.peakMemoryGrowthBytes = peakResidentBytes() - peakBefore;
  process.stderr.write(`fuzz ${target}: ${JSON.stringify(summaryLine(summary))}\n`);
  const memoryBudget = options.peakMemoryGrowthBytes ?? 512 << 20;
  if (summary.peakMemoryGrowthBytes > memoryBudget) {
    throw new Error(
      `${target}: peak memory grew by ${summary.peakMemoryGrowthBytes} bytes, past the ${memoryBudget}-byte budget`,
    );
  }
  if (details.failed) {
    const example = details.counterexample?.[0] as T | undefined;
    const saved = example !== undefined ? saveFinding(options, example) : undefined;
    throw new Error(
      `${target} failed on an input (seed ${seed}, path ${details.counterexamplePath}` +
        `${saved ? `, saved as ${saved}` : ''}): ${describe(details.errorInstance)}\n` +
        `${where(details.errorInstance)}` +
        `input: ${fc.stringify(example).slice(0, 4000)}`,
      { cause: details.errorInstance },
    );
  }
  return summary;
}

/** The process's peak resident memory so far (ru_maxrss). */
function peakResidentBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

function summaryLine(summary: FuzzSummary): Omit<FuzzSummary, 'target'> {
  const { target: _, ...rest } = summary;
  return rest;
}

/** The CkptError a call threw, or undefined when it returned; any other error propagates. */
async function outcomeOf(call: () => unknown): Promise<CkptError | undefined> {
  try {
    await call();
    return undefined;
  } catch (error) {
    if (error instanceof CkptError) return error;
    throw error;
  }
}

/** The first frames of an error's stack, to find the failing line without a rerun. */
function where(error: unknown): string {
  const frames =
    error instanceof Error ? (error.stack ?? '').split('\n').filter((l) => l.trim().startsWith('at ')) : [];
  return frames.length > 0 ? `${frames.slice(0, 6).join('\n')}\n` : '';
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function regressionFiles(folder: string | undefined): Array<[string, Uint8Array]> {
  if (!folder || !existsSync(folder)) return [];
  return readdirSync(folder)
    .filter((name) => name.endsWith('.bin'))
    .sort()
    .map((name) => [name, readFileSync(join(folder, name))]);
}

function saveFinding<T>(options: FuzzOptions<T>, input: T): string | undefined {
  if (!options.regressions || !options.bytesOf) return undefined;
  const bytes = options.bytesOf(input);
  mkdirSync(options.regressions, { recursive: true });
  const name = `${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.bin`;
  writeFileSync(join(options.regressions, name), bytes);
  return join(options.regressions, name);
}
