/**
 * The globals a pickle may name, modelled on torch's weights_only
 * allow-list, each mapped to an inert handler. Anything else is refused with
 * an UnsafePickleError naming it; nothing is imported or run, ever.
 *
 * Users may allow more names with `allowGlobals` (as torch's
 * `add_safe_globals`): they become inert instances (a plain object with the
 * class name remembered) unless ckpt knows the class (numpy arrays, numpy
 * scalars). Some modules stay refused whatever is allowed.
 */
import { type DType, shown, type Tensor, UnsupportedError } from '@ckpt/core';
import { numpyHandlers } from './numpy.js';
import {
  type Fail,
  type GlobalHandler,
  GlobalRef,
  PyDict,
  PyInstance,
  PyList,
  PySet,
  PyTuple,
  PyWholeFloat,
  UnsafePickleError,
} from './pickle/unpickler.js';
import { asParameter, torchDevice, torchDtype, withPython } from './pickle/values.js';
import { isStorageRef, type StorageRef, type ViewRequest } from './tensors.js';
import { KNOWN_TORCH_DTYPES, STORAGE_CLASS_DTYPE, TORCH_DTYPE } from './torch-types.js';

/** Modules nothing may be loaded from, even when a user allows a name in them. */
const BLOCKED_MODULES = new Set([
  'sys',
  'os',
  'posix',
  'nt',
  'subprocess',
  'runpy',
  'importlib',
  'pickle',
  '_pickle',
  'marshal',
  'ctypes',
  'code',
  'codeop',
  'pty',
  'shutil',
  'socket',
  'webbrowser',
  'pdb',
  'bdb',
  'timeit',
  'multiprocessing',
  'asyncio',
  'threading',
  'signal',
  'pip',
  'setuptools',
  'operator',
  'functools',
  'types',
  'inspect',
  'gc',
  'io',
  '_io',
]);

/** Builtins that would run code or reach the system, refused even when allowed. */
const BLOCKED_BUILTINS = new Set([
  'eval',
  'exec',
  'compile',
  'open',
  'getattr',
  'setattr',
  'delattr',
  '__import__',
  'breakpoint',
  'input',
  'globals',
  'locals',
  'vars',
  'apply',
  'execfile',
  'memoryview',
  'type',
  'object',
]);

/** Names users commonly allow, grouped. */
export const GLOBAL_PRESETS: Readonly<Record<string, readonly string[]>> = {
  argparse: ['argparse.Namespace'],
  numpy: [
    'numpy.core.multiarray._reconstruct',
    'numpy._core.multiarray._reconstruct',
    'numpy.ndarray',
    'numpy.dtype',
    'numpy.core.multiarray.scalar',
    'numpy._core.multiarray.scalar',
  ],
  lightning: [
    'pytorch_lightning.utilities.parsing.AttributeDict',
    'lightning.pytorch.utilities.parsing.AttributeDict',
    'lightning.fabric.utilities.data.AttributeDict',
    'lightning_fabric.utilities.data.AttributeDict',
  ],
};

export interface AllowListOptions {
  /**
   * More globals to accept, as `module.name`, or preset names: 'argparse',
   * 'numpy' (arrays, dtypes and scalars, as in rng states), 'lightning' (AttributeDict).
   */
  allowGlobals?: readonly string[];
}

function isBlocked(module: string, name: string): boolean {
  const root = module.split('.')[0] as string;
  return BLOCKED_MODULES.has(root) || (module === 'builtins' && BLOCKED_BUILTINS.has(name));
}

function bool(value: unknown, what: string, fail: Fail): boolean {
  if (typeof value !== 'boolean') return fail(`${what} must be a bool, got ${typeof value}`);
  return value;
}

function tupleItems(value: unknown, what: string, fail: Fail): unknown[] {
  if (value instanceof PyTuple) return value.items;
  return fail(`${what} must be a tuple`);
}

function numbersOf(value: unknown): unknown {
  return value instanceof PyTuple ? value.items.map((v) => (v instanceof PyWholeFloat ? v.value : v)) : value;
}

const callable = (call: GlobalHandler['call']): GlobalHandler => ({ call });

/** The handlers that do not depend on the file being read, built once. */
const STATIC_HANDLERS: Readonly<Record<string, GlobalHandler>> = (() => {
  const handlers: Record<string, GlobalHandler> = {
    'collections.OrderedDict': {
      call: (args, fail) => fillDict(new PyDict('collections.OrderedDict'), args, fail),
      create: () => new PyDict('collections.OrderedDict'),
    },
    'collections.Counter': {
      call: (args, fail) => fillCounter(new PyDict('collections.Counter'), args, fail),
      create: () => new PyDict('collections.Counter'),
    },
    'torch.Tensor': { value: () => withPython({ name: 'torch.Tensor' }, { className: 'global' }) },
    'torch.Size': callable(([dims], fail) => new PyTuple(tupleItems(dims, 'torch.Size', fail), 'torch.Size')),
    'torch.device': callable((args, fail) => {
      const [type, index] = args;
      if (typeof type !== 'string') return fail('torch.device needs a string');
      const [kind, number] = type.split(':');
      return torchDevice(
        kind as string,
        typeof index === 'number' ? index : number === undefined ? null : Number(number),
      );
    }),
    'torch.serialization._get_layout': callable(([name], fail) => {
      if (typeof name !== 'string') return fail('_get_layout needs a layout name');
      return withPython({ name }, { className: 'torch.layout' });
    }),
    '_codecs.encode': callable(([text, encoding], fail) => {
      if (typeof text !== 'string') return fail('_codecs.encode of something that is not a string');
      const codec = typeof encoding === 'string' ? encoding.toLowerCase().replace('-', '') : 'utf8';
      if (codec !== 'latin1' && codec !== 'utf8' && codec !== 'ascii')
        return fail(`_codecs.encode with encoding ${shown(encoding)}`);
      return new Uint8Array(Buffer.from(text, codec === 'utf8' ? 'utf8' : 'latin1'));
    }),
    'builtins.bytearray': callable(([source]) => {
      const bytes = source instanceof Uint8Array ? new Uint8Array(source) : new Uint8Array(0);
      return withPython(bytes, { className: 'builtins.bytearray' });
    }),
    'builtins.set': callable(
      ([items]) => new PySet(items instanceof PyList ? items.items : items instanceof PyTuple ? items.items : []),
    ),
    'builtins.complex': callable(([real = 0, imag = 0]) => {
      // Only numbers: Number() of an arbitrary value from the pickle could call into it, or throw.
      const part = (v: unknown) =>
        v instanceof PyWholeFloat ? v.value : typeof v === 'number' || typeof v === 'bigint' ? Number(v) : Number.NaN;
      return withPython({ real: part(real), imag: part(imag) }, { className: 'builtins.complex' });
    }),
  };
  for (const [name, dtype] of Object.entries(STORAGE_CLASS_DTYPE)) {
    const handler: GlobalHandler = { value: () => withPython({ name, dtype }, { className: 'torch.storage' }) };
    handlers[`torch.${name}`] = handler;
    handlers[`torch.cuda.${name}`] = handler;
  }
  for (const name of ['torch.storage.UntypedStorage', 'torch.UntypedStorage', 'torch.storage.TypedStorage']) {
    handlers[name] = { value: () => withPython({ name }, { className: 'torch.storage' }) };
  }
  for (const name of KNOWN_TORCH_DTYPES) handlers[`torch.${name}`] ??= { value: () => torchDtype(name) };
  for (const scheme of [
    'per_tensor_affine',
    'per_tensor_symmetric',
    'per_channel_affine',
    'per_channel_symmetric',
    'per_channel_affine_float_qparams',
  ]) {
    handlers[`torch.${scheme}`] = { value: () => withPython({ name: scheme }, { className: 'torch.qscheme' }) };
  }
  for (const name of [
    '_rebuild_qtensor',
    '_rebuild_sparse_tensor',
    '_rebuild_meta_tensor_no_storage',
    '_rebuild_wrapper_subclass',
    '_rebuild_device_tensor_from_numpy',
    '_rebuild_device_tensor_from_cpu_tensor',
  ]) {
    handlers[`torch._utils.${name}`] = callable(() => {
      throw new UnsupportedError(
        `torch._utils.${name} tensors (quantized, sparse, meta or subclass tensors) cannot be read`,
      );
    });
  }
  return Object.freeze(handlers);
})();

const NUMPY_HANDLERS = numpyHandlers();

/** The handlers that build tensors, for one load: `tensorFrom` makes a tensor from a storage view. */
function tensorHandlers(tensorFrom: (request: ViewRequest) => Tensor): Record<string, GlobalHandler> {
  let nestedRebuilds = 0;
  const rebuild =
    (withDtype: boolean) =>
    (args: unknown[], fail: Fail): Tensor => {
      const [storage, offset, size, stride, requiresGrad, , dtypeArg] = args;
      if (!isStorageRef(storage)) return fail('a tensor is rebuilt from something that is not a storage');
      let dtype: DType | undefined;
      if (withDtype) {
        const name = dtypeArg instanceof GlobalRef ? dtypeArg.fullName.replace(/^torch\./, '') : undefined;
        dtype = name === undefined ? undefined : TORCH_DTYPE[name];
        if (!dtype) throw new UnsupportedError(`tensors of dtype ${String(name)} cannot be read`);
      }
      return tensorFrom({
        storage: storage as StorageRef,
        offset,
        size: numbersOf(size),
        stride: numbersOf(stride),
        dtype,
        requiresGrad: requiresGrad === undefined ? false : bool(requiresGrad, 'requires_grad', fail),
      });
    };
  const parameter = ([data, requiresGrad = true]: unknown[], fail: Fail) => {
    if (!isTensorValue(data)) return fail('Parameter of something that is not a tensor');
    return parameterOf(data as Tensor, bool(requiresGrad, 'requires_grad', fail));
  };
  return {
    'torch._utils._rebuild_tensor': callable((args, fail) => rebuild(false)([...args.slice(0, 4), false], fail)),
    'torch._utils._rebuild_tensor_v2': callable(rebuild(false)),
    'torch._utils._rebuild_tensor_v3': callable(rebuild(true)),
    'torch._utils._rebuild_parameter': callable(parameter),
    'torch._utils._rebuild_parameter_with_state': callable(parameter),
    'torch._tensor._rebuild_from_type_v2': callable(([func, newType, args], fail) => {
      if (!(func instanceof GlobalRef) || !func.handler.call)
        return fail('_rebuild_from_type_v2 with a function that is not allowed');
      // It calls another rebuild function, which may be itself: bounded, so nesting cannot overflow the stack.
      if (func.fullName === 'torch._tensor._rebuild_from_type_v2' && ++nestedRebuilds > 16)
        return fail('_rebuild_from_type_v2 nested more than 16 deep');
      const result = func.handler.call(tupleItems(args, 'its arguments', fail), fail);
      if (
        newType instanceof GlobalRef &&
        newType.fullName === 'torch.nn.parameter.Parameter' &&
        isTensorValue(result)
      ) {
        return parameterOf(result as Tensor, true);
      }
      return result;
    }),
    'torch.nn.parameter.Parameter': { call: parameter, create: parameter },
  };
}

/** Resolves GLOBALs for one load: `tensorFrom` builds tensors from storages. */
export function createResolver(tensorFrom: (request: ViewRequest) => Tensor, options: AllowListOptions = {}) {
  const handlers = tensorHandlers(tensorFrom);
  const allowed = new Set<string>();
  for (const entry of options.allowGlobals ?? [])
    for (const name of GLOBAL_PRESETS[entry] ?? [entry]) allowed.add(name);

  const resolved = new Map<string, GlobalHandler>();
  return (module: string, name: string): GlobalHandler => {
    const fullName = `${module}.${name}`;
    const known = resolved.get(fullName);
    if (known) return known;
    const handler = resolve(module, name, fullName);
    resolved.set(fullName, handler);
    return handler;
  };

  function resolve(module: string, name: string, fullName: string): GlobalHandler {
    if (isBlocked(module, name)) {
      throw new UnsafePickleError(
        `refused to load ${fullName}: nothing is ever loaded from ${module === 'builtins' ? `builtins.${name}` : module}, and nothing was run`,
        {
          global: fullName,
        },
      );
    }
    const builtIn = handlers[fullName] ?? STATIC_HANDLERS[fullName];
    if (builtIn) return builtIn;
    if (allowed.has(fullName)) return NUMPY_HANDLERS[fullName] ?? genericClass(fullName);
    throw new UnsafePickleError(
      `refused to load ${fullName}: it is not on the allow-list, and nothing was imported or run. If you trust this file and ${fullName} only holds data, allow it with { allowGlobals: ['${fullName}'] }`,
      { global: fullName },
    );
  }
}

/** A tensor, or the TensorStub inspect makes in its place. */
function isTensorValue(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'dtype' in value && 'shape' in value;
}

/** A parameter of `data`; a stub (inspect) stays a stub. */
function parameterOf(data: Tensor, requiresGrad: boolean): Tensor {
  return 'data' in data ? asParameter(data, requiresGrad) : data;
}

/** The items Python would iterate over in `iterable`, or undefined when it is not iterable. */
function iterate(iterable: unknown): unknown[] | undefined {
  if (iterable instanceof PyList || iterable instanceof PyTuple || iterable instanceof PySet) return iterable.items;
  if (iterable instanceof PyDict) return [...iterable.entries.values()].map(([key]) => key);
  if (typeof iterable === 'string') return [...iterable];
  if (iterable instanceof Uint8Array) return [...iterable];
  return undefined;
}

/**
 * OrderedDict(items), as Python builds it (torch's weights_only unpickler
 * calls the real class): no argument, a mapping, or an iterable whose items
 * each unpack to exactly two values. Old torch files pickle a state dict as
 * REDUCE over a list of `[key, value]` lists.
 */
function fillDict(dict: PyDict, args: unknown[], fail: Fail): PyDict {
  if (args.length > 1) fail(`${dict.className} takes at most one argument, got ${args.length}`);
  if (args.length === 0) return dict;
  const [items] = args;
  if (items instanceof PyDict) {
    for (const [k, v] of items.entries.values()) dict.set(k, v, fail);
    return dict;
  }
  const pairs = iterate(items) ?? fail(`${dict.className} is built from something that is not iterable`);
  for (const pair of pairs) {
    const kv = iterate(pair);
    if (kv === undefined || kv.length !== 2 || pair instanceof PySet || pair instanceof PyDict)
      fail(`${dict.className} is built from something other than (key, value) pairs`);
    dict.set(kv?.[0], kv?.[1], fail);
  }
  return dict;
}

/** Counter(items): a mapping's counts copied, or each item of an iterable counted. */
function fillCounter(dict: PyDict, args: unknown[], fail: Fail): PyDict {
  if (args.length > 1) fail(`collections.Counter takes at most one argument, got ${args.length}`);
  if (args.length === 0) return dict;
  const [items] = args;
  if (items instanceof PyDict) return fillDict(dict, args, fail);
  const elements = iterate(items) ?? fail('collections.Counter is built from something that is not iterable');
  const counts = new Map<string, [unknown, number]>();
  for (const element of elements) {
    const probe = new PyDict();
    probe.set(element, 0, fail); // checks that the element can be a key
    const key = [...probe.entries.keys()][0] as string;
    const seen = counts.get(key);
    counts.set(key, [element, (seen?.[1] ?? 0) + 1]);
  }
  for (const [element, count] of counts.values()) dict.set(element, count, fail);
  return dict;
}

/** A user-allowed class ckpt does not know: an inert instance remembering its name, arguments and state. */
function genericClass(fullName: string): GlobalHandler {
  const make = (args: unknown[], fail: Fail) => {
    const instance = new PyInstance(fullName, []);
    // A dict subclass (AttributeDict) may be called with its items.
    const [first] = args;
    if (first instanceof PyDict && args.length === 1)
      for (const [k, v] of first.entries.values()) instance.dict.set(k, v, fail);
    else for (const arg of args) instance.args.push(arg);
    return instance;
  };
  return { call: make, create: make };
}
