/**
 * How Python values from a pickle appear in JavaScript, and how the facts
 * JavaScript cannot hold (an OrderedDict rather than a dict, a float that
 * happens to be whole, an nn.Parameter) are kept so that writing the tree
 * back gives torch the same objects.
 *
 * | Python | JavaScript |
 * |---|---|
 * | None, bool, str | null, boolean, string |
 * | int | number when exact (|n| <= 2^53), else bigint |
 * | float | number (NaN and infinities included); a whole float is remembered as a float |
 * | bytes | Uint8Array |
 * | bytearray | Uint8Array, remembered as a bytearray |
 * | list, tuple, set | Array, Tuple, Set |
 * | dict with only str keys | plain object |
 * | dict with any other key (int, tuple, ...) | Map |
 * | OrderedDict, Counter | plain object or Map, remembered as such, with `_metadata` |
 * | torch.Tensor | Tensor (C-contiguous) |
 * | nn.Parameter | Tensor, remembered as a parameter with its requires_grad |
 * | torch.Size | Tuple, remembered as a torch.Size |
 * | torch.device, torch.dtype, complex, allowed classes | plain objects, remembered as such |
 *
 * The facts are kept under the `PYTHON` symbol, a non-enumerable property:
 * invisible to JSON, to equality checks and to other formats.
 */
import type { StateKey, StateValue, Tensor } from '@ckpt/core';

export const PYTHON: unique symbol = Symbol.for('ckpt.python');

export interface PythonInfo {
  /** The Python class, when it is not the plain one: 'collections.OrderedDict', 'torch.Size', 'argparse.Namespace', ... */
  className?: string;
  /** Attributes set by BUILD (an OrderedDict's `_metadata`, say). */
  attributes?: StateValue;
  /** Keys (or list indices) whose values are floats that happen to be whole. */
  floats?: ReadonlySet<StateKey>;
  /** Tensors: an nn.Parameter rather than a plain tensor. */
  parameter?: boolean;
  /** Tensors: requires_grad as saved. */
  requiresGrad?: boolean;
}

type Carrier = object;

/** The Python facts remembered for a value, if any. */
export function pythonInfo(value: unknown): PythonInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  return (value as { [PYTHON]?: PythonInfo })[PYTHON];
}

/** Attaches Python facts to an object (before it is frozen). */
export function withPython<T extends Carrier>(value: T, info: PythonInfo): T {
  Object.defineProperty(value, PYTHON, { value: Object.freeze({ ...pythonInfo(value), ...info }), enumerable: false });
  return value;
}

/** A tensor that is an nn.Parameter, as torch would pickle it. */
export function asParameter(tensor: Tensor, requiresGrad = true): Tensor {
  const copy = { dtype: tensor.dtype, shape: tensor.shape, data: tensor.data };
  return Object.freeze(withPython(copy, { ...pythonInfo(tensor), parameter: true, requiresGrad }));
}

export function isParameter(tensor: Tensor): boolean {
  return pythonInfo(tensor)?.parameter === true;
}

export function requiresGrad(tensor: Tensor): boolean {
  return pythonInfo(tensor)?.requiresGrad === true;
}

/** A number to be written as a Python float even when it is whole (1.0, not 1). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export function pyFloat(value: number): PyFloat {
  return new PyFloat(value);
}

/** A torch.device: `{ type: 'cuda', index: 0 }`. */
export function torchDevice(type: string, index: number | null = null): { type: string; index: number | null } {
  return withPython({ type, index }, { className: 'torch.device' });
}

/** A torch.dtype such as torch.float32: `{ name: 'float32' }`. */
export function torchDtype(name: string): { name: string } {
  return withPython({ name }, { className: 'torch.dtype' });
}
