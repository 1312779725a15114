// Resolves one name and prints the path and the file's SHA-256: one of the processes racing for a file.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Resolver } from '../../dist/index.js';

const [endpoint, bucket, cacheDir, name] = process.argv.slice(2);
const resolver = new Resolver({
  cacheDir,
  bucket: { enabled: true, name: bucket, prefix: 'modelZoo/', endpoint, forcePathStyle: true },
  credentials: { accessKeyId: 'ckpt-test', secretAccessKey: 'ckpt-test-secret' },
  partSize: 1 << 20,
});
const path = await resolver.resolve(name);
process.stdout.write(
  `${JSON.stringify({ path, sha256: createHash('sha256').update(readFileSync(path)).digest('hex') })}\n`,
);
resolver.destroy();
