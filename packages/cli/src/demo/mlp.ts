/**
 * A small multilayer perceptron with Adam, in plain TypeScript: enough of a
 * model for the demo to train, checkpoint, crash and resume for real. The
 * state dict and optimizer state have torch's names and shapes
 * (`layers.0.weight` is [out, in]; Adam keeps `exp_avg` / `exp_avg_sq`).
 */
import { fromTypedArray, type StateTree, type Tensor, toFloat32Array } from '@ckpt/core';

/** Deterministic random numbers (mulberry32), so runs and resumes are reproducible. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Layer {
  weight: Float32Array; // [out, in]
  bias: Float32Array; // [out]
  inputs: number;
  outputs: number;
}

export class Mlp {
  readonly layers: Layer[];

  constructor(
    readonly sizes: number[],
    seed = 0,
  ) {
    const rand = random(seed);
    this.layers = sizes.slice(1).map((outputs, i) => {
      const inputs = sizes[i] as number;
      const bound = Math.sqrt(6 / inputs); // He-uniform, for ReLU
      const weight = Float32Array.from({ length: outputs * inputs }, () => (rand() * 2 - 1) * bound);
      return { weight, bias: new Float32Array(outputs), inputs, outputs };
    });
  }

  /** The parameters in torch's order: weight then bias per layer. */
  get parameters(): Float32Array[] {
    return this.layers.flatMap((l) => [l.weight, l.bias]);
  }

  /** Each parameter's shape, in the order of `parameters`. */
  get shapes(): number[][] {
    return this.layers.flatMap((l) => [[l.outputs, l.inputs], [l.outputs]]);
  }

  /** Activations of every layer for a batch (`x` is [n, inputs], row-major); the last are logits. */
  forward(x: Float32Array, n: number): Float32Array[] {
    const activations = [x];
    this.layers.forEach((layer, li) => {
      const input = activations[activations.length - 1] as Float32Array;
      const out = new Float32Array(n * layer.outputs);
      for (let r = 0; r < n; r++) {
        for (let o = 0; o < layer.outputs; o++) {
          let sum = layer.bias[o] as number;
          const w = o * layer.inputs;
          const xi = r * layer.inputs;
          for (let i = 0; i < layer.inputs; i++) sum += (layer.weight[w + i] as number) * (input[xi + i] as number);
          out[r * layer.outputs + o] = li < this.layers.length - 1 ? Math.max(0, sum) : sum;
        }
      }
      activations.push(out);
    });
    return activations;
  }

  /** Softmax cross-entropy loss and accuracy of a batch; with `grads`, fills them (same order as `parameters`). */
  loss(x: Float32Array, labels: Uint8Array, n: number, grads?: Float32Array[]): { loss: number; correct: number } {
    const activations = this.forward(x, n);
    const classes = this.sizes[this.sizes.length - 1] as number;
    const logits = activations[activations.length - 1] as Float32Array;
    let delta = new Float32Array(n * classes);
    let loss = 0;
    let correct = 0;
    for (let r = 0; r < n; r++) {
      const row = logits.subarray(r * classes, (r + 1) * classes);
      const max = Math.max(...row);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      const label = labels[r] as number;
      loss += -(row[label] as number) + max + Math.log(sum);
      let best = 0;
      for (let c = 0; c < classes; c++) {
        if ((row[c] as number) > (row[best] as number)) best = c;
        delta[r * classes + c] = (Math.exp((row[c] as number) - max) / sum - (c === label ? 1 : 0)) / n;
      }
      if (best === label) correct++;
    }
    if (grads) {
      for (let li = this.layers.length - 1; li >= 0; li--) {
        const layer = this.layers[li] as Layer;
        const input = activations[li] as Float32Array;
        const gw = grads[2 * li] as Float32Array;
        const gb = grads[2 * li + 1] as Float32Array;
        gw.fill(0);
        gb.fill(0);
        const next = new Float32Array(n * layer.inputs);
        for (let r = 0; r < n; r++) {
          for (let o = 0; o < layer.outputs; o++) {
            const d = delta[r * layer.outputs + o] as number;
            if (d === 0) continue;
            gb[o] = (gb[o] as number) + d;
            const w = o * layer.inputs;
            for (let i = 0; i < layer.inputs; i++) {
              gw[w + i] = (gw[w + i] as number) + d * (input[r * layer.inputs + i] as number);
              next[r * layer.inputs + i] = (next[r * layer.inputs + i] as number) + d * (layer.weight[w + i] as number);
            }
          }
        }
        // Through the previous layer's ReLU.
        for (let k = 0; k < next.length; k++) if ((input[k] as number) <= 0) next[k] = 0;
        delta = next;
      }
    }
    return { loss: loss / n, correct };
  }

  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    this.layers.forEach((layer, i) => {
      out[`layers.${i}.weight`] = fromTypedArray(layer.weight.slice(), [layer.outputs, layer.inputs]);
      out[`layers.${i}.bias`] = fromTypedArray(layer.bias.slice(), [layer.outputs]);
    });
    return out;
  }

  loadStateDict(state: Record<string, unknown>): void {
    this.layers.forEach((layer, i) => {
      layer.weight.set(toFloat32Array(state[`layers.${i}.weight`] as Tensor));
      layer.bias.set(toFloat32Array(state[`layers.${i}.bias`] as Tensor));
    });
  }
}

/** Adam, as torch.optim.Adam does it (bias-corrected moments). */
export class Adam {
  step = 0;
  readonly expAvg: Float32Array[];
  readonly expAvgSq: Float32Array[];

  constructor(
    readonly params: Float32Array[],
    readonly shapes: number[][],
    readonly lr = 0.01,
    readonly betas: [number, number] = [0.9, 0.999],
    readonly eps = 1e-8,
  ) {
    this.expAvg = params.map((p) => new Float32Array(p.length));
    this.expAvgSq = params.map((p) => new Float32Array(p.length));
  }

  update(grads: Float32Array[]): void {
    this.step++;
    const [b1, b2] = this.betas;
    const c1 = 1 - b1 ** this.step;
    const c2 = 1 - b2 ** this.step;
    this.params.forEach((p, k) => {
      const g = grads[k] as Float32Array;
      const m = this.expAvg[k] as Float32Array;
      const v = this.expAvgSq[k] as Float32Array;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] as number;
        m[i] = b1 * (m[i] as number) + (1 - b1) * gi;
        v[i] = b2 * (v[i] as number) + (1 - b2) * gi * gi;
        p[i] = (p[i] as number) - (this.lr * ((m[i] as number) / c1)) / (Math.sqrt((v[i] as number) / c2) + this.eps);
      }
    });
  }

  /**
   * torch's layout: `state` keyed by parameter index (integers, as
   * `Optimizer.load_state_dict` matches them), `param_groups` with the hyperparameters.
   */
  stateDict(): StateTree {
    const state = new Map<number, StateTree>();
    this.params.forEach((_, k) => {
      state.set(k, {
        step: this.step,
        exp_avg: fromTypedArray((this.expAvg[k] as Float32Array).slice(), this.shapes[k]),
        exp_avg_sq: fromTypedArray((this.expAvgSq[k] as Float32Array).slice(), this.shapes[k]),
      });
    });
    return {
      state,
      param_groups: [
        { lr: this.lr, betas: [...this.betas], eps: this.eps, weight_decay: 0, params: this.params.map((_, k) => k) },
      ],
    } as unknown as StateTree;
  }

  loadStateDict(saved: Record<string, unknown>): void {
    type Entry = { step: number; exp_avg: Tensor; exp_avg_sq: Tensor };
    const state = saved.state as Map<number | string, Entry> | Record<string, Entry>;
    this.params.forEach((_, k) => {
      const entry = state instanceof Map ? (state.get(k) ?? state.get(String(k))) : state[String(k)];
      if (!entry) throw new Error(`optimizer state has no entry for parameter ${k}`);
      (this.expAvg[k] as Float32Array).set(toFloat32Array(entry.exp_avg));
      (this.expAvgSq[k] as Float32Array).set(toFloat32Array(entry.exp_avg_sq));
      this.step = Number(entry.step);
    });
  }
}
