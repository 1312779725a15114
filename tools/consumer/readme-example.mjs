// Prints the README's first TypeScript example, exactly as a reader would copy it.
import { readFileSync } from 'node:fs';

const readme = readFileSync(process.argv[2] ?? 'README.md', 'utf8');
const match = /```ts\n([\s\S]*?)```/.exec(readme);
if (!match) {
  console.error('the README has no ```ts example');
  process.exit(1);
}
process.stdout.write(match[1]);
