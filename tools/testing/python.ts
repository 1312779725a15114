import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Runs a Python reference (numpy, safetensors, torch, ml_dtypes) for
 * compatibility tests. The interpreter is `CKPT_PYTHON`, else the project's
 * tools/python/.venv (made by `npm test` from tools/python/requirements.txt),
 * else `python3`.
 *
 * Compatibility tests are real tests: when the interpreter or a module is
 * missing they fail, saying what to install, unless `CKPT_SKIP_PYTHON=1`
 * is set explicitly (for quick local runs).
 */
const projectVenv = fileURLToPath(new URL('../python/.venv/bin/python', import.meta.url));

export const pythonCommand: string = process.env.CKPT_PYTHON ?? (existsSync(projectVenv) ? projectVenv : 'python3');

export const skipPython: boolean = process.env.CKPT_SKIP_PYTHON === '1';

export interface PythonRun {
  stdout: string;
  stderr: string;
}

/** Runs `script` (code) with `args`, feeding `input` on stdin; throws with stderr when it fails. */
export function runPython(script: string, args: readonly string[] = [], input?: string): PythonRun {
  return run(['-c', script, ...args], input);
}

/** Runs the Python file at `path` with `args`, feeding `input` on stdin, with `env` added to the environment. */
export function runPythonFile(
  path: string,
  args: readonly string[] = [],
  input?: string,
  env: Record<string, string> = {},
): PythonRun {
  return run([path, ...args], input, env);
}

function run(argv: string[], input: string | undefined, env: Record<string, string> = {}): PythonRun {
  const result = spawnSync(pythonCommand, argv, {
    input,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (result.error) throw new Error(`could not run ${pythonCommand}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`${pythonCommand} failed (exit ${result.status}):\n${result.stderr}`);
  }
  return { stdout: result.stdout, stderr: result.stderr };
}

/** Runs `script` with JSON on stdin and parses the JSON it prints. */
export function runPythonJson<T = unknown>(script: string, input: unknown, args: readonly string[] = []): T {
  return JSON.parse(runPython(script, args, JSON.stringify(input)).stdout) as T;
}

/** Throws, naming the modules to install, unless every module imports. */
export function requirePythonModules(modules: readonly string[]): void {
  const probe = spawnSync(pythonCommand, ['-c', modules.map((m) => `import ${m}`).join('; ')], { encoding: 'utf8' });
  if (probe.status !== 0) {
    throw new Error(
      `compatibility tests need Python with ${modules.join(', ')} (${pythonCommand}: ${probe.stderr.trim() || probe.error?.message}); ` +
        `install them (pip install ${modules.join(' ')}) or set CKPT_SKIP_PYTHON=1 to skip these tests`,
    );
  }
}
