/**
 * Everything the CLI prints goes through here: JSON on `--json`, otherwise
 * text with colour only on a terminal (NO_COLOR and FORCE_COLOR honoured),
 * and progress bars on stderr only on a terminal.
 */
import { maskCredentials } from '@ckpt/core';
import { SingleBar } from 'cli-progress';
import pc from 'picocolors';

export type Colors = ReturnType<typeof pc.createColors>;

export interface OutputOptions {
  json: boolean;
  /** Forces colour off (`--no-color`). */
  color?: boolean;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
}

function colorWanted(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv, flag: boolean | undefined): boolean {
  if (flag === false || 'NO_COLOR' in env) return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

export class Output {
  readonly json: boolean;
  readonly c: Colors;
  readonly #stdout: NodeJS.WriteStream;
  readonly #stderr: NodeJS.WriteStream;
  readonly #progress: boolean;

  constructor(options: OutputOptions) {
    const env = options.env ?? process.env;
    this.json = options.json;
    this.#stdout = options.stdout ?? process.stdout;
    this.#stderr = options.stderr ?? process.stderr;
    this.c = pc.createColors(colorWanted(this.#stdout, env, options.color));
    this.#progress = !this.json && this.#stderr.isTTY === true && env.CKPT_NO_PROGRESS === undefined;
  }

  /** A line of text (nothing in JSON mode: commands print one JSON document instead). */
  line(text = ''): void {
    if (!this.json) this.#stdout.write(`${text}\n`);
  }

  /** The command's result: printed as JSON in JSON mode, else through `human`. */
  result(value: unknown, human: () => void): void {
    if (this.json) this.#stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
    else human();
  }

  // Warnings and errors may quote a database URL from a driver's message: its password is masked here.
  warn(text: string): void {
    this.#stderr.write(`${this.c.yellow('warning:')} ${maskCredentials(text)}\n`);
  }

  /** An error as one JSON line on stderr, for `--json` callers. */
  errorJson(value: unknown): void {
    this.#stderr.write(`${maskCredentials(JSON.stringify(value))}\n`);
  }

  error(text: string): void {
    this.#stderr.write(`${this.c.red('error:')} ${maskCredentials(text)}\n`);
  }

  /** Aligned columns; numbers (right-aligned) are detected per column. */
  table(headers: string[], rows: Array<Array<string | number>>): void {
    const cells = rows.map((row) => row.map((cell) => String(cell)));
    const widths = headers.map((h, i) => Math.max(visible(h), ...cells.map((row) => visible(row[i] ?? ''))));
    const right = headers.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === 'number'));
    const pad = (text: string, i: number) => {
      const fill = ' '.repeat(Math.max(0, (widths[i] ?? 0) - visible(text)));
      return right[i] ? fill + text : text + fill;
    };
    this.line(this.c.bold(headers.map(pad).join('  ').trimEnd()));
    for (const row of cells) this.line(row.map(pad).join('  ').trimEnd());
  }

  /** A progress bar on stderr while `work` runs (a no-op off a terminal). */
  async withProgress<T>(
    label: string,
    work: (report: (p: { bytesDone: number; bytesTotal: number }) => void) => Promise<T>,
  ): Promise<T> {
    if (!this.#progress) return work(() => {});
    const bar = new SingleBar({
      format: `${label} [{bar}] {percentage}% | {done} / {all} | {speed}`,
      barsize: 30,
      hideCursor: true,
      clearOnComplete: true,
      stream: this.#stderr,
    });
    const started = Date.now();
    let begun = false;
    const report = ({ bytesDone, bytesTotal }: { bytesDone: number; bytesTotal: number }) => {
      const payload = {
        done: formatBytes(bytesDone),
        all: formatBytes(bytesTotal),
        speed: `${formatBytes(bytesDone / Math.max((Date.now() - started) / 1000, 0.001))}/s`,
      };
      if (!begun) {
        bar.start(Math.max(bytesTotal, 1), bytesDone, payload);
        begun = true;
      } else {
        bar.setTotal(Math.max(bytesTotal, 1));
        bar.update(bytesDone, payload);
      }
    };
    try {
      return await work(report);
    } finally {
      if (begun) bar.stop();
    }
  }
}

/** JSON without surprises: bigint as numbers or strings, Dates as ISO strings, non-finite numbers as strings. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI colour codes is the point
const ANSI = /\u001b\[[0-9;]*m/g;

function visible(text: string): number {
  return text.replace(ANSI, '').length;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

export function formatMetric(value: number | null | undefined): string {
  if (value === null || value === undefined) return '-';
  if (!Number.isFinite(value)) return String(value);
  return Math.abs(value) >= 1000 || value === Math.trunc(value) ? String(value) : value.toPrecision(4);
}
