import { pytorch } from '@ckpt/storage-pytorch';
import { bestOf } from './lib.mjs';

const path = process.argv[2];
await pytorch.load(path);
for (let i = 0; i < 3; i++) {
  console.log(
    'load best',
    ((await bestOf(() => pytorch.load(path), 20, 10)) * 1e3).toFixed(2),
    'ms',
    'inspect best',
    ((await bestOf(() => pytorch.inspect(path), 20, 10)) * 1e3).toFixed(2),
    'ms',
  );
}
