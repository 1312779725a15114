/**
 * numpy arrays, dtypes and scalars, for users who allow them (`allowGlobals:
 * ['numpy']`): they appear in rng states and some trainers' checkpoints.
 * Arrays become tensors; object arrays (which carry arbitrary pickles) and
 * string arrays are refused.
 */
import { type DType, type StateValue, tensor, UnsupportedError } from '@ckpt/core';
import { type Fail, type GlobalHandler, GlobalRef, PyBuilt, PyTuple } from './pickle/unpickler.js';
import { withPython } from './pickle/values.js';
import { gatherStrided, swapBytes } from './tensors.js';

const NUMPY_DTYPES: Record<string, DType> = {
  b1: 'BOOL',
  i1: 'I8',
  u1: 'U8',
  i2: 'I16',
  u2: 'U16',
  i4: 'I32',
  u4: 'U32',
  i8: 'I64',
  u8: 'U64',
  f2: 'F16',
  f4: 'F32',
  f8: 'F64',
  c8: 'C64',
  c16: 'C128',
};

class NumpyDtype extends PyBuilt {
  bigEndian = false;
  constructor(readonly code: string) {
    super();
  }
  get dtype(): DType {
    const dtype = NUMPY_DTYPES[this.code.replace(/^[<>=|]/, '')];
    if (!dtype)
      throw new UnsupportedError(
        `numpy arrays of dtype ${JSON.stringify(this.code)} cannot be read (object and string arrays are refused)`,
      );
    return dtype;
  }
  get size(): number {
    return Number(/\d+$/.exec(this.code)?.[0] ?? 1);
  }
  setState(state: unknown): void {
    if (state instanceof PyTuple && typeof state.items[1] === 'string') this.bigEndian = state.items[1] === '>';
  }
  toValue(): StateValue {
    return withPython({ name: this.code }, { className: 'numpy.dtype' });
  }
}

class NumpyArray extends PyBuilt {
  shape: number[] = [];
  dtype: NumpyDtype | undefined;
  fortran = false;
  raw: Uint8Array | undefined;

  setState(state: unknown, fail: Fail): void {
    if (!(state instanceof PyTuple) || state.items.length < 5)
      return fail('a numpy array state is not (version, shape, dtype, fortran, data)');
    const [, shape, dtype, fortran, raw] = state.items;
    if (!(shape instanceof PyTuple) || !shape.items.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      return fail('a numpy array shape is not a tuple of sizes');
    }
    if (!(dtype instanceof NumpyDtype)) return fail('a numpy array has no dtype');
    if (!(raw instanceof Uint8Array))
      throw new UnsupportedError('numpy arrays of Python objects cannot be read (they carry arbitrary pickles)');
    this.shape = shape.items as number[];
    this.dtype = dtype;
    this.fortran = fortran === true;
    this.raw = raw;
  }

  toValue(_convert: unknown, fail: Fail): StateValue {
    if (!this.dtype || !this.raw) return fail('a numpy array was never given its state');
    const dtype = this.dtype.dtype;
    const size = this.dtype.size;
    const count = this.shape.reduce((n, d) => n * d, 1);
    if (this.raw.byteLength !== count * size)
      return fail(`a numpy array holds ${this.raw.byteLength} bytes, not the ${count * size} its shape needs`);
    let data = this.raw;
    if (this.fortran && this.shape.length > 1) {
      const strides = this.shape.map((_, i) => this.shape.slice(0, i).reduce((n, d) => n * d, 1));
      data = gatherStrided(this.raw, size, 0, this.shape, strides);
    }
    if (this.dtype.bigEndian) {
      data = data === this.raw ? data.slice() : data;
      swapBytes(data, dtype === 'C64' || dtype === 'C128' ? size / 2 : size);
    }
    const t = tensor(dtype, this.shape, data);
    return Object.freeze(withPython({ dtype: t.dtype, shape: t.shape, data: t.data }, { className: 'numpy.ndarray' }));
  }
}

function scalarValue(dtype: NumpyDtype, raw: Uint8Array, fail: Fail): StateValue {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const little = !dtype.bigEndian;
  if (raw.byteLength !== dtype.size) return fail('a numpy scalar has the wrong number of bytes');
  switch (dtype.dtype) {
    case 'BOOL':
      return raw[0] !== 0;
    case 'I8':
      return view.getInt8(0);
    case 'U8':
      return view.getUint8(0);
    case 'I16':
      return view.getInt16(0, little);
    case 'U16':
      return view.getUint16(0, little);
    case 'I32':
      return view.getInt32(0, little);
    case 'U32':
      return view.getUint32(0, little);
    case 'I64': {
      const v = view.getBigInt64(0, little);
      return Number.isSafeInteger(Number(v)) ? Number(v) : v;
    }
    case 'U64': {
      const v = view.getBigUint64(0, little);
      return Number.isSafeInteger(Number(v)) ? Number(v) : v;
    }
    case 'F32':
      return view.getFloat32(0, little);
    case 'F64':
      return view.getFloat64(0, little);
    default:
      throw new UnsupportedError(`numpy scalars of dtype ${dtype.code} cannot be read`);
  }
}

export function numpyHandlers(): Record<string, GlobalHandler> {
  const reconstruct: GlobalHandler = {
    call: ([cls], fail) => {
      if (!(cls instanceof GlobalRef) || cls.fullName !== 'numpy.ndarray')
        return fail('_reconstruct of something other than numpy.ndarray');
      return new NumpyArray();
    },
  };
  const scalar: GlobalHandler = {
    call: ([dtype, raw], fail) => {
      if (!(dtype instanceof NumpyDtype) || !(raw instanceof Uint8Array))
        return fail('a numpy scalar needs a dtype and bytes');
      return new ScalarBox(scalarValue(dtype, raw, fail));
    },
  };
  return {
    'numpy.core.multiarray._reconstruct': reconstruct,
    'numpy._core.multiarray._reconstruct': reconstruct,
    'numpy.ndarray': { value: () => withPython({ name: 'numpy.ndarray' }, { className: 'global' }) },
    'numpy.dtype': {
      call: ([code], fail) => (typeof code === 'string' ? new NumpyDtype(code) : fail('numpy.dtype needs a type code')),
    },
    'numpy.core.multiarray.scalar': scalar,
    'numpy._core.multiarray.scalar': scalar,
  };
}

/** A numpy scalar's value; boxed so the unpickler treats it as a finished value. */
class ScalarBox extends PyBuilt {
  constructor(readonly value: StateValue) {
    super();
  }
  setState(_state: unknown, fail: Fail): void {
    fail('BUILD on a numpy scalar');
  }
  toValue(): StateValue {
    return this.value;
  }
}
