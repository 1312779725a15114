// The state the DCP tests write: the whole of it, and one rank's part of it.
import { fromTypedArray, tensor } from '@ckpt/core';
import { DcpShard } from '../../dist/index.js';

const W = [12, 5];
const TABLE = [6, 4];

/** Row-major values: w[i] = i / 2, table[i] = 1000 + i (int64), b = bf16 of 1..7. */
export function dcpFullState() {
  const b = new Uint16Array(7).map((_, i) => new Uint32Array(new Float32Array([i + 1]).buffer)[0] >>> 16);
  return {
    model: {
      w: tensor('F32', W, new Uint8Array(new Float32Array(60).map((_, i) => i / 2).buffer)),
      table: tensor('I64', TABLE, new Uint8Array(new BigInt64Array(24).map((_, i) => BigInt(1000 + i)).buffer)),
      b: tensor('BF16', [7], new Uint8Array(b.buffer)),
    },
    step: 42,
    note: 'hello',
    history: [1, 2, 3],
    optim: { state: [{ exp_avg: fromTypedArray(new Float64Array([0.5, 0.25])) }] },
  };
}

/** The rows [from, to) and columns [c0, c1) of a row-major tensor, as a new tensor. */
function slice(t, rows, cols) {
  const [, width] = t.shape;
  const size = t.data.byteLength / (t.shape[0] * width);
  const out = new Uint8Array((rows[1] - rows[0]) * (cols[1] - cols[0]) * size);
  let at = 0;
  for (let r = rows[0]; r < rows[1]; r++) {
    const start = (r * width + cols[0]) * size;
    const run = (cols[1] - cols[0]) * size;
    out.set(t.data.subarray(start, start + run), at);
    at += run;
  }
  return tensor(t.dtype, [rows[1] - rows[0], cols[1] - cols[0]], out);
}

/** Rank r of n: rows of w split evenly (the last rank takes the rest), columns of table likewise; the rest replicated. */
export function dcpRankState(rank, worldSize) {
  const full = dcpFullState();
  const part = (length) => {
    const each = Math.ceil(length / worldSize);
    return [Math.min(length, rank * each), Math.min(length, (rank + 1) * each)];
  };
  const rows = part(W[0]);
  const cols = part(TABLE[1]);
  return {
    ...full,
    model: {
      ...full.model,
      w: new DcpShard(slice(full.model.w, rows, [0, W[1]]), { offsets: [rows[0], 0], shape: W }),
      table: new DcpShard(slice(full.model.table, [0, TABLE[0]], cols), { offsets: [0, cols[0]], shape: TABLE }),
    },
  };
}
