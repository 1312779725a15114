/**
 * `ckpt demo`, the main job: trains the demo MLP in a child process that is
 * killed with SIGKILL mid-epoch, resumes from the latest checkpoint in this
 * process, verifies everything, exports the best model to .pt, and prints a
 * summary and the commands to explore the result.
 */
import { spawn } from 'node:child_process';
import { existsSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '@ckpt/core';
import { TrackingStore } from '@ckpt/tracker-sqlite';
import type { Context } from '../context.js';
import { EXPERIMENT, openManager, PROJECT, train } from '../demo/train.js';
import { formatBytes, formatMetric } from '../output.js';

export interface DemoOptions {
  folder?: string;
  epochs?: string;
  crashAt?: string;
  /** Internal: run only the training (the child process). */
  phase?: string;
  keep?: boolean;
}

const BIN = fileURLToPath(new URL('../bin.js', import.meta.url));
/** The committed launcher that npm links as `node_modules/.bin/ckpt`. */
const LAUNCHER = fileURLToPath(new URL('../../bin/ckpt.js', import.meta.url));

/**
 * How to run ckpt from the working folder, as printed for the user: `npx ckpt`
 * only when npx will find this very CLI locally (so it never asks the registry
 * for a package named `ckpt`), else `node <path to the launcher>`.
 */
export function ckptCommand(cwd = process.cwd()): string {
  // npx looks in the project folder: the nearest one up from here with a package.json or node_modules.
  for (let folder = resolve(cwd); ; folder = dirname(folder)) {
    if (existsSync(join(folder, 'package.json')) || existsSync(join(folder, 'node_modules'))) {
      try {
        if (realpathSync(join(folder, 'node_modules', '.bin', 'ckpt')) === realpathSync(LAUNCHER)) return 'npx ckpt';
      } catch {
        // No local link: fall through to the launcher's path.
      }
      break;
    }
    if (dirname(folder) === folder) break;
  }
  const path = relative(cwd, LAUNCHER);
  return `node ${/\s/.test(path) ? JSON.stringify(path) : path}`;
}

function positive(text: string | undefined, fallback: number, flag: string): number {
  const n = text === undefined ? fallback : Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} must be a whole number >= 1`);
  return n;
}

export async function demoCommand(ctx: Context, options: DemoOptions): Promise<void> {
  const folder = resolve(options.folder ?? 'ckpt-demo');
  const epochs = positive(options.epochs, 30, '--epochs');
  const crashAt = positive(options.crashAt, Math.ceil(epochs / 2), '--crash-at');
  if (crashAt > epochs) throw new InvalidArgumentError('--crash-at must be at most --epochs');
  const log = (line: string) => ctx.out.line(line);

  if (options.phase === 'train') {
    await train({ folder, epochs, crashAtEpoch: crashAt, log });
    return;
  }

  const { c } = ctx.out;
  const started = Date.now();
  if (existsSync(folder) && !options.keep) rmSync(folder, { recursive: true, force: true });
  log(
    c.bold(
      `ckpt demo: an MLP on a 3-arm spiral, ${epochs} epochs, checkpoints in ${relative(process.cwd(), folder) || '.'}`,
    ),
  );
  log('');
  log(c.bold(`1. Training in a child process, which will crash in epoch ${crashAt}`));
  const exit = await runChild(folder, epochs, crashAt);
  log(c.yellow(`  the training process died (${exit}); the checkpoints written before the crash are intact`));
  log('');
  log(c.bold('2. Resuming from the latest checkpoint'));
  const run = await train({ folder, epochs, log });
  log('');
  log(c.bold('3. Verifying every checkpoint and exporting the best to PyTorch'));
  const manager = await openManager(folder, undefined);
  const verified = await manager.verify('all');
  const bad = verified.filter((v) => v.status !== 'ok');
  log(
    bad.length === 0
      ? c.green(`  all ${verified.length} kept checkpoints match their SHA-256`)
      : c.red(`  ${bad.length} checkpoints failed: ${bad.map((b) => `${b.id} ${b.status}`).join(', ')}`),
  );
  const exported = await manager.export('best', join(folder, 'exports'), { format: 'pytorch' });
  const bestPt = exported.files[0]?.path ?? exported.destination;
  log(`  best model exported to ${relative(process.cwd(), bestPt)} (torch.load(weights_only=True) reads it)`);
  const summary = await manager.summary();
  const records = await manager.list();
  await manager.close();

  const store = TrackingStore.open(join(folder, 'ckpt.db'));
  const experiment = store.getExperiment(EXPERIMENT, PROJECT);
  const metrics = store.metrics(experiment.id);
  const stats = store.statistics();
  store.close();
  writeFileSync(
    join(folder, 'ckpt.config.yaml'),
    `# Written by ckpt demo: every ckpt command run with --config ${relative(process.cwd(), join(folder, 'ckpt.config.yaml'))} uses it.\ncheckpoints:\n  directory: checkpoints\n  experiment: ${EXPERIMENT}\n  monitor: val_loss\n  mode: min\ntracker:\n  database: ckpt.db\n  project: ${PROJECT}\n`,
  );
  if (bad.length > 0) throw new Error('the demo found corrupted checkpoints');

  log('');
  log(c.bold('Summary'));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  log(
    `  experiment   ${PROJECT}/${EXPERIMENT}: ${experiment.status}, resumed from ${run.resumedFrom ?? '-'}, ${seconds} s in all`,
  );
  log(
    `  checkpoints  ${summary.count} kept of ${epochs} saved (best 3 by val_loss + latest), ${formatBytes(summary.totalSize)}`,
  );
  for (const r of records) {
    log(
      `    ${r.id.padEnd(28)} epoch ${String(r.epoch).padStart(2)}  val_loss ${formatMetric(r.metrics.val_loss)}  val_acc ${formatMetric(r.metrics.val_accuracy)}${r.isBest ? c.green('  best') : ''}${r.isLatest ? '  latest' : ''}`,
    );
  }
  const m = (name: string) => metrics.find((x) => x.name === name);
  log(
    `  tracking     ${stats.metrics.points.toLocaleString('en-US')} metric points in ${relative(process.cwd(), join(folder, 'ckpt.db'))}; best val_loss ${formatMetric(m('val_loss')?.min)}, final val_acc ${formatMetric(m('val_accuracy')?.last)}`,
  );
  const config = relative(process.cwd(), join(folder, 'ckpt.config.yaml'));
  const ckpt = ckptCommand();
  const cli = `${ckpt} --config ${config}`;
  log('');
  log(c.bold('Explore the result'));
  for (const line of [
    `${cli} list`,
    `${cli} summary`,
    `${cli} show best`,
    `${cli} compare best latest --tensors`,
    `${cli} metrics ${EXPERIMENT} --plot --metric val_loss`,
    `${cli} experiments`,
    `${cli} verify ${relative(process.cwd(), join(folder, 'checkpoints', EXPERIMENT))}`,
    `${ckpt} inspect ${relative(process.cwd(), bestPt)}`,
    `${ckpt} diff ${relative(process.cwd(), records[0]?.path ?? '')} ${relative(process.cwd(), records[records.length - 1]?.path ?? '')}`,
  ]) {
    log(`  ${c.cyan(line)}`);
  }
}

/** Runs the training phase in a child process and waits for it to die. */
function runChild(folder: string, epochs: number, crashAt: number): Promise<string> {
  return new Promise((resolveExit, reject) => {
    const child = spawn(
      process.execPath,
      [BIN, 'demo', '--phase', 'train', '--folder', folder, '--epochs', String(epochs), '--crash-at', String(crashAt)],
      { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env } },
    );
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolveExit('killed by SIGKILL');
      else reject(new Error(`the training process exited with ${signal ?? `code ${code}`} instead of crashing`));
    });
  });
}
