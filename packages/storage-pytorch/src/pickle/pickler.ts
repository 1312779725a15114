/**
 * Writing a state tree as the protocol 2 pickle torch.save writes: tensors
 * as `_rebuild_tensor_v2` (or `_v3` for dtypes without a storage class) over
 * persistent storage ids, dicts, lists and tuples as Python's pickler writes
 * them, and the Python facts kept under the PYTHON symbol (OrderedDict,
 * `_metadata`, whole floats, parameters) written back as they were read.
 */
import {
  type DType,
  dtypeInfo,
  InvalidArgumentError,
  isPlainObject,
  isTensor,
  type StateKey,
  type StateValue,
  type Tensor,
  Tuple,
  UnsupportedError,
} from '@ckpt/core';
import { CANONICAL_TORCH_DTYPE, DTYPE_STORAGE_CLASS } from '../torch-types.js';
import { Op } from './opcodes.js';
import { PyFloat, pythonInfo } from './values.js';

/** Where a tensor's bytes go: a storage record and the tensor's element offset in it. */
export interface StorageSlot {
  /** The storage, shared by tensors that share memory. */
  storage: PlannedStorage;
  /** Offset of the tensor in the storage, in elements. */
  offset: number;
}

export interface PlannedStorage {
  key?: string;
  dtype: DType;
  bytes: Uint8Array;
}

class ByteWriter {
  #buffer = new Uint8Array(1 << 12);
  #length = 0;
  #reserve(n: number) {
    if (this.#length + n <= this.#buffer.byteLength) return;
    const grown = new Uint8Array(Math.max(this.#buffer.byteLength * 2, this.#length + n));
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }
  byte(b: number) {
    this.#reserve(1);
    this.#buffer[this.#length++] = b;
  }
  bytes(b: Uint8Array) {
    this.#reserve(b.byteLength);
    this.#buffer.set(b, this.#length);
    this.#length += b.byteLength;
  }
  u16(v: number) {
    this.byte(v & 0xff);
    this.byte((v >>> 8) & 0xff);
  }
  u32(v: number) {
    this.u16(v & 0xffff);
    this.u16((v >>> 16) & 0xffff);
  }
  result(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }
}

function encodeLong(value: bigint): Uint8Array {
  if (value === 0n) return new Uint8Array(0);
  const out: number[] = [];
  let v = value;
  for (;;) {
    out.push(Number(v & 0xffn));
    const next = v >> 8n;
    const signBit = (out[out.length - 1] as number) & 0x80;
    if ((next === 0n && !signBit) || (next === -1n && signBit)) break;
    v = next;
  }
  return Uint8Array.from(out);
}

function contiguousStrides(size: readonly number[]): number[] {
  const strides = new Array<number>(size.length).fill(1);
  for (let i = size.length - 2; i >= 0; i--)
    strides[i] = (strides[i + 1] as number) * Math.max(1, size[i + 1] as number);
  return strides;
}

export interface PickledState {
  pickle: Uint8Array;
  /** Storages in key order ("0", "1", ...): each one's bytes. */
  storages: Array<{ key: string; bytes: Uint8Array }>;
}

/** Pickles `value`; `slotOf` says which storage each tensor lives in. */
export function pickleState(value: StateValue, slotOf: (t: Tensor) => StorageSlot): PickledState {
  const out = new ByteWriter();
  const memo = new Map<object, number>();
  const storages: Array<{ key: string; bytes: Uint8Array }> = [];
  const opened = new Set<object>();

  const put = (object: object) => {
    const index = memo.size;
    memo.set(object, index);
    if (index < 256) {
      out.byte(Op.BINPUT);
      out.byte(index);
    } else {
      out.byte(Op.LONG_BINPUT);
      out.u32(index);
    }
  };
  const get = (object: object): boolean => {
    const index = memo.get(object);
    if (index === undefined) return false;
    if (index < 256) {
      out.byte(Op.BINGET);
      out.byte(index);
    } else {
      out.byte(Op.LONG_BINGET);
      out.u32(index);
    }
    return true;
  };
  // Globals and short strings are memoized by value, as Python's pickler
  // memoizes them by identity: each is written once, then fetched.
  const shared = new Map<string, object>();
  const memoized = (key: string, write: () => void) => {
    const known = shared.get(key);
    if (known && get(known)) return;
    write();
    const token = {};
    shared.set(key, token);
    put(token);
  };
  const global = (module: string, name: string) =>
    memoized(`g${module}.${name}`, () => {
      out.byte(Op.GLOBAL);
      out.bytes(Buffer.from(`${module}\n${name}\n`, 'utf8'));
    });
  const string = (text: string) => {
    const write = () => {
      const encoded = Buffer.from(text, 'utf8');
      out.byte(Op.BINUNICODE);
      out.u32(encoded.byteLength);
      out.bytes(encoded);
    };
    if (text.length <= 64) memoized(`s${text}`, write);
    else write();
  };
  const int = (v: number | bigint) => {
    if (typeof v === 'number' && v >= 0 && v < 256) {
      out.byte(Op.BININT1);
      out.byte(v);
    } else if (typeof v === 'number' && v >= 0 && v < 65536) {
      out.byte(Op.BININT2);
      out.u16(v);
    } else if (v >= -(2 ** 31) && v < 2 ** 31) {
      out.byte(Op.BININT);
      out.u32(Number(v) >>> 0);
    } else {
      const bytes = encodeLong(BigInt(v));
      out.byte(Op.LONG1);
      out.byte(bytes.byteLength);
      out.bytes(bytes);
    }
  };
  const float = (v: number) => {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, v, false);
    out.byte(Op.BINFLOAT);
    out.bytes(bytes);
  };
  const tuple = (items: readonly (() => void)[]) => {
    if (items.length === 0) return out.byte(Op.EMPTY_TUPLE);
    if (items.length > 3) out.byte(Op.MARK);
    for (const item of items) item();
    out.byte(
      items.length === 1 ? Op.TUPLE1 : items.length === 2 ? Op.TUPLE2 : items.length === 3 ? Op.TUPLE3 : Op.TUPLE,
    );
  };
  const emptyOrderedDict = () => {
    global('collections', 'OrderedDict');
    out.byte(Op.EMPTY_TUPLE);
    out.byte(Op.REDUCE);
  };

  const number = (v: number, asFloat: boolean) => {
    if (asFloat || !Number.isInteger(v) || Object.is(v, -0)) float(v);
    else if (Number.isSafeInteger(v)) int(v);
    else float(v); // a whole number past 2^53 is a float in JavaScript
  };

  const writeTensor = (t: Tensor) => {
    const info = pythonInfo(t);
    const slot = slotOf(t);
    const { storage } = slot;
    if (storage.key === undefined) {
      storage.key = String(storages.length);
      storages.push({ key: storage.key, bytes: storage.bytes });
    }
    const torchName = CANONICAL_TORCH_DTYPE[t.dtype];
    if (!torchName) throw new UnsupportedError(`torch has no dtype for ${t.dtype}`);
    const storageClass = DTYPE_STORAGE_CLASS[t.dtype];
    let size = [...t.shape];
    if (t.dtype === 'F4') {
      // torch's float4_e2m1fn_x2 counts bytes of two values.
      const lastDim = size[size.length - 1] ?? 2;
      if (lastDim % 2 !== 0)
        throw new UnsupportedError('an F4 tensor needs an even last dimension to be saved for torch');
      size = size.length === 0 ? [] : [...size.slice(0, -1), lastDim / 2];
    }
    const grad = info?.parameter ? info.requiresGrad !== false : info?.requiresGrad === true;
    const kind = dtypeInfo(t.dtype).kind;
    if (grad && kind !== 'float' && kind !== 'complex') {
      throw new InvalidArgumentError(
        `a ${t.dtype} tensor cannot require gradients: torch allows that only for floating-point and complex tensors`,
      );
    }
    const elementSize = t.dtype === 'F4' ? 1 : dtypeInfo(t.dtype).bits / 8;
    const numel = storage.bytes.byteLength / elementSize;
    if (info?.parameter) global('torch._utils', '_rebuild_parameter');
    if (info?.parameter) out.byte(Op.MARK);
    global('torch._utils', storageClass ? '_rebuild_tensor_v2' : '_rebuild_tensor_v3');
    out.byte(Op.MARK);
    // The persistent id: ('storage', storage_type, key, location, numel).
    out.byte(Op.MARK);
    string('storage');
    if (storageClass) global('torch', storageClass);
    else global('torch.storage', 'UntypedStorage');
    string(storage.key);
    string('cpu');
    int(storageClass ? numel : storage.bytes.byteLength);
    out.byte(Op.TUPLE);
    out.byte(Op.BINPERSID);
    int(slot.offset);
    tuple(size.map((d) => () => int(d)));
    tuple(contiguousStrides(size).map((s) => () => int(s)));
    out.byte(info?.requiresGrad && !info.parameter ? Op.NEWTRUE : Op.NEWFALSE);
    emptyOrderedDict();
    if (!storageClass) global('torch', torchName);
    out.byte(Op.TUPLE);
    out.byte(Op.REDUCE);
    if (info?.parameter) {
      out.byte(info.requiresGrad === false ? Op.NEWFALSE : Op.NEWTRUE);
      emptyOrderedDict();
      out.byte(Op.TUPLE);
      out.byte(Op.REDUCE);
    }
  };

  const entries = (pairs: Array<[StateKey, StateValue]>, floats: ReadonlySet<StateKey> | undefined) => {
    for (let i = 0; i < pairs.length; i += 1000) {
      out.byte(Op.MARK);
      for (const [k, v] of pairs.slice(i, i + 1000)) {
        write(k as StateValue, false);
        write(v, floats?.has(k) ?? false);
      }
      out.byte(Op.SETITEMS);
    }
  };

  const dict = (object: object, pairs: Array<[StateKey, StateValue]>) => {
    const info = pythonInfo(object);
    const className = info?.className;
    if (
      className &&
      className !== 'collections.OrderedDict' &&
      className !== 'collections.Counter' &&
      className !== 'builtins.dict'
    ) {
      return instance(object, className, pairs);
    }
    if (className === 'collections.OrderedDict' || className === 'collections.Counter') {
      global('collections', className.slice('collections.'.length));
      out.byte(Op.EMPTY_TUPLE);
      out.byte(Op.REDUCE);
    } else {
      out.byte(Op.EMPTY_DICT);
    }
    put(object);
    if (pairs.length > 0) entries(pairs, info?.floats);
    if (
      info?.attributes !== undefined &&
      (className === 'collections.OrderedDict' || className === 'collections.Counter')
    ) {
      // An OrderedDict's attributes, such as a state_dict's `_metadata`.
      write(info.attributes, false);
      out.byte(Op.BUILD);
    }
  };

  /** Objects of other classes, written back as torch or Python would. */
  const instance = (object: object, className: string, pairs: Array<[StateKey, StateValue]>) => {
    const value = object as Record<string, StateValue>;
    switch (className) {
      case 'torch.device': {
        global('torch', 'device');
        const type = String(value.type);
        tuple(
          value.index === null || value.index === undefined
            ? [() => string(type)]
            : [() => string(type), () => int(value.index as number)],
        );
        out.byte(Op.REDUCE);
        return put(object);
      }
      case 'torch.dtype':
        return global('torch', String(value.name));
      case 'torch.layout':
        global('torch.serialization', '_get_layout');
        tuple([() => string(String(value.name))]);
        out.byte(Op.REDUCE);
        return put(object);
      case 'builtins.complex':
        global('builtins', 'complex');
        tuple([() => float(Number(value.real)), () => float(Number(value.imag))]);
        out.byte(Op.REDUCE);
        return put(object);
      case 'global': {
        const name = String(value.name);
        return global(name.slice(0, name.lastIndexOf('.')), name.slice(name.lastIndexOf('.') + 1));
      }
      case 'torch.storage':
      case 'torch.qscheme':
      case 'numpy.dtype':
        throw new UnsupportedError(`a ${className} value cannot be written to a torch file`);
      default: {
        // Another class: cls.__new__(cls) then its attributes, as pickle does for plain classes.
        const dot = className.lastIndexOf('.');
        global(className.slice(0, dot), className.slice(dot + 1));
        out.byte(Op.EMPTY_TUPLE);
        out.byte(Op.NEWOBJ);
        put(object);
        const own = pairs.filter(([k]) => k !== '__args__' && k !== '__items__' && k !== '__state__');
        out.byte(Op.EMPTY_DICT);
        if (own.length > 0) entries(own, pythonInfo(object)?.floats);
        out.byte(Op.BUILD);
      }
    }
  };

  const write = (v: StateValue | PyFloat, asFloat: boolean): void => {
    if (v === null || v === undefined) return out.byte(Op.NONE);
    if (v === true) return out.byte(Op.NEWTRUE);
    if (v === false) return out.byte(Op.NEWFALSE);
    if (v instanceof PyFloat) return float(v.value);
    if (typeof v === 'number') return number(v, asFloat);
    if (typeof v === 'bigint') return int(v);
    if (typeof v === 'string') return string(v);
    if (typeof v !== 'object') throw new InvalidArgumentError(`a ${typeof v} cannot be saved in a torch file`);
    if (get(v)) return;
    if (opened.has(v))
      throw new InvalidArgumentError('the state refers to itself (a cycle): torch files cannot hold that');
    opened.add(v);
    try {
      if (isTensor(v)) {
        writeTensor(v);
        return put(v);
      }
      const info = pythonInfo(v);
      if (v instanceof Uint8Array) {
        const wrap = info?.className === 'builtins.bytearray';
        if (wrap) global('builtins', 'bytearray');
        global('_codecs', 'encode');
        tuple([() => string(Buffer.from(v).toString('latin1')), () => string('latin1')]);
        out.byte(Op.REDUCE);
        if (wrap) {
          out.byte(Op.TUPLE1);
          out.byte(Op.REDUCE);
        }
        return put(v);
      }
      if (v instanceof Tuple) {
        const floats = info?.floats;
        if (info?.className === 'torch.Size') global('torch', 'Size');
        tuple(v.map((item, i) => () => write(item, floats?.has(i) ?? false)));
        if (info?.className === 'torch.Size') {
          out.byte(Op.TUPLE1);
          out.byte(Op.REDUCE);
        }
        return put(v);
      }
      if (Array.isArray(v)) {
        out.byte(Op.EMPTY_LIST);
        put(v);
        const floats = info?.floats;
        for (let i = 0; i < v.length; i += 1000) {
          out.byte(Op.MARK);
          for (let k = i; k < Math.min(v.length, i + 1000); k++) write(v[k], floats?.has(k) ?? false);
          out.byte(Op.APPENDS);
        }
        return;
      }
      if (v instanceof Set) {
        global('builtins', 'set');
        out.byte(Op.EMPTY_LIST);
        out.byte(Op.MARK);
        for (const item of v) write(item, false);
        out.byte(Op.APPENDS);
        out.byte(Op.TUPLE1);
        out.byte(Op.REDUCE);
        return put(v);
      }
      if (v instanceof Map) return dict(v, [...v.entries()]);
      if (isPlainObject(v)) return dict(v, Object.entries(v));
      throw new InvalidArgumentError(
        `a ${(v as object).constructor?.name ?? 'value'} cannot be saved in a torch file`,
        {
          expected:
            'tensors, numbers, bigints, strings, booleans, null, bytes, arrays, Tuples, Sets, Maps and plain objects',
        },
      );
    } finally {
      opened.delete(v);
    }
  };

  out.byte(Op.PROTO);
  out.byte(2);
  write(value, false);
  out.byte(Op.STOP);
  return { pickle: out.result(), storages };
}
