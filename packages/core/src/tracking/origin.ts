/** Where and from which commit an experiment runs, when the caller does not say. */
import { execFileSync } from 'node:child_process';
import { hostname } from 'node:os';

export function currentGitCommit(): string | undefined {
  try {
    const out = execFileSync('git', ['rev-parse', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 });
    const commit = out.toString().trim();
    return /^[0-9a-f]{40,64}$/.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

export function currentHost(): string {
  return hostname();
}
