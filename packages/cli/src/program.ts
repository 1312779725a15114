/**
 * The `ckpt` command line: subcommands, help, exit codes (0 ok, 1 failure,
 * 2 usage error). Each command is a thin layer over the packages.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isCkptError } from '@ckpt/core';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig } from './config.js';
import { Context } from './context.js';
import { Output } from './output.js';

// Command modules load when their command runs: `ckpt hash` need not load the AWS SDK or SQLite.
const files = () => import('./commands/files.js');
const hashing = () => import('./commands/hash.js');
const checkpoints = () => import('./commands/checkpoints.js');
const tracker = () => import('./commands/tracker.js');
const db = () => import('./commands/db.js');
const resolver = () => import('./commands/resolver.js');
const demo = () => import('./commands/demo.js');
const ui = () => import('./commands/ui.js');

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

interface GlobalOptions {
  config?: string;
  json?: boolean;
  color?: boolean;
  dir?: string;
  experiment?: string;
  database?: string;
  offline?: boolean;
}

/** Runs the CLI on `argv` (without node and the script) and returns the exit code. */
export async function main(argv: string[], io: { stdout?: NodeJS.WriteStream; stderr?: NodeJS.WriteStream } = {}) {
  let status: number = EXIT.ok;
  const program = new Command('ckpt');
  let output: Output | undefined;

  // Builds the context from the global options; commands return false for "ran, but found a problem".
  const action =
    <A extends unknown[]>(
      run: (ctx: Context, ...args: A) => Promise<boolean | undefined> | Promise<void> | boolean | undefined | void,
    ) =>
    async (...args: A) => {
      const globals = program.opts<GlobalOptions>();
      output = new Output({ json: globals.json ?? false, color: globals.color, ...io });
      const flags = {
        ...(globals.config ? { config: globals.config } : {}),
        ...(globals.dir ? { dir: globals.dir } : {}),
        ...(globals.experiment ? { experiment: globals.experiment } : {}),
        ...(globals.database ? { database: globals.database } : {}),
        ...(globals.offline ? { offline: true } : {}),
      };
      const ok = await run(new Context(loadConfig(flags), output, () => loadConfig(flags)), ...args);
      if (ok === false) status = EXIT.failure;
    };

  program
    .description('ckpt: save, load, verify, compare and ship machine learning checkpoints')
    .version(VERSION)
    .option('--config <file>', 'settings file (default: ./ckpt.config.yaml, .yml or .json; env CKPT_CONFIG)')
    .option('--json', 'print results as JSON')
    .option('--no-color', 'no colour, even on a terminal (NO_COLOR is honoured too)')
    .option('-d, --dir <folder>', 'the checkpoint root folder (env CKPT_DIR; default ./checkpoints)')
    .option('-e, --experiment <name>', 'the experiment under the root folder (env CKPT_EXPERIMENT)')
    .option(
      '--database <file|url>',
      'the tracking database: a SQLite file, postgres://user@host/db or mysql://user@host/db (env CKPT_DATABASE; default ./ckpt.db)',
    )
    .option('--offline', 'never touch the network (resolver commands)')
    .showHelpAfterError('(run ckpt --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => (io.stdout ?? process.stdout).write(text),
      writeErr: (text) => (io.stderr ?? process.stderr).write(text),
    });

  // ---------------------------------------------------------------- files
  program
    .command('inspect <file>')
    .description(
      'format, tensors (name, dtype, shape, size), parameter count and metadata of a checkpoint file (or torch.distributed.checkpoint folder)',
    )
    .option('--digest', 'also compute the SHA-256 of every file')
    .option('--limit <n>', 'show at most n tensors in text (default 1000; --json lists all)')
    .action(
      action(async (ctx, file: string, opts: { digest?: boolean; limit?: string }) =>
        (await files()).inspectCommand(ctx, file, opts),
      ),
    );

  program
    .command('hash [files...]')
    .description('SHA-256 of files, in parallel, printed as sha256sum prints them')
    .option('-c, --check <sums>', 'read SHA-256 sums from a file and check them, as sha256sum -c')
    .option('-q, --quiet', 'with --check: do not print OK for each file')
    .action(
      action(async (ctx, files: string[], opts: { check?: string; quiet?: boolean }) =>
        opts.check ? (await hashing()).checkCommand(ctx, opts.check, opts) : (await hashing()).hashCommand(ctx, files),
      ),
    );

  program
    .command('verify [target]')
    .description('verify a checkpoint file, or every checkpoint of an experiment (folder or name)')
    .option('--sha256 <hex>', 'the digest a single file must have')
    .action(
      action(async (ctx, target: string | undefined, opts: { sha256?: string }) => {
        if (target && existsSync(target) && statSync(target).isFile())
          return (await files()).verifyFile(ctx, target, opts);
        return (await checkpoints()).verifyExperiment(ctx, target);
      }),
    );

  program
    .command('convert <input> <output>')
    .description(
      'convert between torch (.pt, .bin, .ckpt), torch.distributed.checkpoint folders and safetensors; the format follows the content, then the extension (a new DCP folder: --to dcp)',
    )
    .option('--shard-size <size>', 'split the output into shards of at most this size (e.g. 5GB), with an index')
    .option('--from <format>', 'the input format, when its content and extension do not tell')
    .option('--to <format>', 'the output format, when the extension does not tell')
    .option('-f, --force', 'replace the output if it exists')
    .action(
      action(async (ctx, input: string, out: string, opts) => (await files()).convertCommand(ctx, input, out, opts)),
    );

  program
    .command('diff <a> <b>')
    .description('per-tensor differences between two checkpoint files (exit 1 when they differ)')
    .option('--all', 'list equal tensors too')
    .action(
      action(async (ctx, a: string, b: string, opts: { all?: boolean }) =>
        (await files()).diffCommand(ctx, a, b, opts),
      ),
    );

  // ----------------------------------------------------------- checkpoints
  program
    .command('list [experiment]')
    .description("an experiment's checkpoints (an experiment folder or name; default from the config)")
    .option('--tag <tag>', 'only checkpoints with this tag')
    .option('--metric <bound>', 'only checkpoints within a bound, e.g. val_loss<0.3')
    .option('--sort <key>', 'sequence, epoch, step, timestamp, size or metric:<name>')
    .option('--desc', 'descending order')
    .option('--limit <n>', 'at most n checkpoints')
    .action(
      action(async (ctx, target: string | undefined, opts) => (await checkpoints()).listCommand(ctx, target, opts)),
    );

  program
    .command('show <checkpoint> [experiment]')
    .description('one checkpoint: record, metrics, config, tensors (an id, best, latest, epoch:N, step:N)')
    .action(
      action(async (ctx, id: string, target: string | undefined) => (await checkpoints()).showCommand(ctx, id, target)),
    );

  program
    .command('compare <checkpoints...>')
    .description('metrics and config side by side; --tensors for per-tensor differences')
    .option('--tensors', 'compare tensors too')
    .option('--in <experiment>', 'the experiment (folder or name)')
    .action(
      action(async (ctx, ids: string[], opts: { tensors?: boolean; in?: string }) =>
        (await checkpoints()).compareCommand(ctx, ids, opts.in, opts),
      ),
    );

  program
    .command('export <checkpoint> <folder>')
    .description('into a folder: a verified copy, or a conversion (--format pytorch), with a manifest')
    .option('--format <format>', 'safetensors or pytorch (default: the checkpoint own)')
    .option('--in <experiment>', 'the experiment (folder or name)')
    .action(
      action(async (ctx, id: string, destination: string, opts: { format?: string; in?: string }) =>
        (await checkpoints()).exportCommand(ctx, id, destination, opts.in, opts),
      ),
    );

  program
    .command('delete <checkpoints...>')
    .description('delete checkpoints (best, latest and protected ones only with --force)')
    .option('-f, --force', 'delete even the best, the latest or a protected checkpoint')
    .option('--in <experiment>', 'the experiment (folder or name)')
    .action(
      action(async (ctx, ids: string[], opts: { force?: boolean; in?: string }) =>
        (await checkpoints()).deleteCommand(ctx, ids, opts.in, opts),
      ),
    );

  program
    .command('prune [experiment]')
    .description('apply retention: keep the best k and the latest n (never best, latest or protected)')
    .option('--keep-best <k>', 'best checkpoints to keep (default 3)')
    .option('--keep-latest <n>', 'latest checkpoints to keep (default 1)')
    .option('--dry-run', 'say what would be deleted, delete nothing')
    .action(
      action(async (ctx, target: string | undefined, opts) => (await checkpoints()).pruneCommand(ctx, target, opts)),
    );

  program
    .command('protect <checkpoint> [experiment]')
    .description('protect a checkpoint from retention and deletion (--undo to lift it)')
    .option('--undo', 'remove the protection')
    .action(
      action(async (ctx, id: string, target: string | undefined, opts: { undo?: boolean }) =>
        (await checkpoints()).protectCommand(ctx, id, target, opts),
      ),
    );

  program
    .command('summary [experiment]')
    .description("an experiment's checkpoints in brief: count, size, best, latest, problems")
    .action(action(async (ctx, target: string | undefined) => (await checkpoints()).summaryCommand(ctx, target)));

  program
    .command('resume-point [experiment]')
    .description('the checkpoint a resumed run would start from')
    .action(action(async (ctx, target: string | undefined) => (await checkpoints()).resumePointCommand(ctx, target)));

  // --------------------------------------------------------------- tracker
  program
    .command('experiments')
    .description('experiments in the tracking database')
    .option('--project <name>', 'only this project')
    .option('--tag <tag>', 'only experiments with this tag')
    .option('--status <list>', 'running, completed, failed (comma-separated)')
    .option('--metric <condition>', 'e.g. val_loss<0.3 (by the best value; last:val_loss<0.3 for the last)')
    .option('--sort <key>', 'started, ended, name, duration or metric:<name>')
    .option('--desc', 'descending order')
    .option('--limit <n>', 'at most n experiments')
    .action(action(async (ctx, opts) => (await tracker()).experimentsCommand(ctx, opts)));

  program
    .command('metrics <experiment>')
    .description("an experiment's metrics (name or id); --plot draws them in the terminal")
    .option('--project <name>', 'the project (default from the config)')
    .option('-m, --metric <name...>', 'only these metrics')
    .option('--plot', 'plot each metric over its steps')
    .option('--width <n>', 'plot width in points (default 60)')
    .option('--height <n>', 'plot height in lines (default 10)')
    .action(action(async (ctx, experiment: string, opts) => (await tracker()).metricsCommand(ctx, experiment, opts)));

  program
    .command('stats')
    .description('statistics of the tracking database')
    .option('--project <name>', 'only this project')
    .action(action(async (ctx, opts: { project?: string }) => (await tracker()).statsCommand(ctx, opts)));

  const database = program
    .command('db')
    .description('the tracking database itself: what it holds, copying it to another');
  database
    .command('info')
    .description('the tracking database (--database): kind, schema version, what it holds')
    .action(action(async (ctx) => (await db()).infoCommand(ctx)));
  database
    .command('copy <from> <to>')
    .description(
      'copy every experiment from one tracking database to another (e.g. ckpt.db to postgres://…); run again to resume',
    )
    .action(action(async (ctx, from: string, to: string) => (await db()).copyCommand(ctx, from, to)));

  // -------------------------------------------------------------- resolver
  program
    .command('resolve <names...>')
    .description('local paths for checkpoint names: cache, then the bucket (downloading what is missing)')
    .option('--verify', 're-hash cached files against their records')
    .action(
      action(async (ctx, names: string[], opts: { verify?: boolean }) =>
        (await resolver()).resolveCommand(ctx, names, opts),
      ),
    );

  program
    .command('download <names...>')
    .description('download checkpoints into the cache (same as resolve)')
    .action(action(async (ctx, names: string[]) => (await resolver()).resolveCommand(ctx, names, {})));

  program
    .command('upload <file> [key]')
    .description('upload a file with its SHA-256; skipped when the bucket already holds it')
    .action(
      action(async (ctx, file: string, key: string | undefined) => (await resolver()).uploadCommand(ctx, file, key)),
    );

  const cache = program.command('cache').description('the local checkpoint cache');
  cache
    .command('ls')
    .description('cached files, sizes, last use')
    .action(action(async (ctx) => (await resolver()).cacheListCommand(ctx)));
  cache
    .command('verify')
    .description('re-hash every cached file against its record')
    .action(action(async (ctx) => (await resolver()).cacheVerifyCommand(ctx)));
  cache
    .command('prune')
    .description('remove files unused for a while, or the least recently used above a size')
    .option('--older-than <age>', 'e.g. 30d, 12h')
    .option('--max-size <size>', 'e.g. 10GB, 500MiB')
    .option('--dry-run', 'say what would be removed, remove nothing')
    .action(action(async (ctx, opts) => (await resolver()).cachePruneCommand(ctx, opts)));

  // -------------------------------------------------------------------- ui
  program
    .command('ui')
    .description('a local web interface over the same folders and tracking database (Ctrl-C stops it)')
    .option('--port <n>', 'the port (default 0: a free one)')
    .option('--host <address>', 'the address to listen on (default 127.0.0.1; any other requires the printed token)')
    .option('--open', 'open the page in a browser')
    .action(action(async (ctx, opts) => (await ui()).uiCommand(ctx, opts)));

  // ------------------------------------------------------------------ demo
  program
    .command('demo')
    .description('train a small model, crash, resume, verify, export: the tour of ckpt')
    .option('--folder <folder>', 'where the demo writes (default ./ckpt-demo, replaced)')
    .option('--epochs <n>', 'epochs to train (default 30)')
    .option('--crash-at <epoch>', 'the epoch the first process crashes in (default half way)')
    .option('--keep', 'keep an existing demo folder (resume it) instead of starting over')
    .addOption(new Option('--phase <phase>').hideHelp())
    .action(action(async (ctx, opts) => (await demo()).demoCommand(ctx, opts)));

  for (const command of program.commands) command.exitOverride();
  for (const command of cache.commands) command.exitOverride();

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    return report(error, output ?? new Output({ json: false, ...io }));
  }
  return status;
}

function report(error: unknown, output: Output): number {
  if (error instanceof CommanderError) {
    // Help and version are not failures; everything else commander throws is a usage error.
    if (['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(error.code)) return EXIT.ok;
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (isCkptError(error)) {
    const usage = error.code === 'CKPT_INVALID_ARGUMENT';
    const details = [error.expected ? `expected: ${error.expected}` : '', error.found ? `found: ${error.found}` : '']
      .filter(Boolean)
      .join('; ');
    if (output.json) {
      output.errorJson({
        error: { code: error.code, message: error.message, path: error.path, expected: error.expected },
      });
    } else {
      output.error(`${error.message}${details ? ` (${details})` : ''} [${error.code}]`);
    }
    return usage ? EXIT.usage : EXIT.failure;
  }
  output.error((error as Error)?.stack ?? String(error));
  return EXIT.failure;
}
