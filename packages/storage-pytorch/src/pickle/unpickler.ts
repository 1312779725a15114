/**
 * An allow-list unpickler modelled on torch's `weights_only=True` one. It
 * runs the pickle's opcodes as a small stack machine over inert JavaScript
 * values: a GLOBAL names a handler from an allow-list or is refused, REDUCE
 * and NEWOBJ only call those handlers, and nothing is ever imported or
 * executed. It is iterative (no recursion on hostile nesting) and every
 * length is checked against the bytes left.
 */
import {
  CkptError,
  type CkptErrorDetails,
  FormatError,
  LIMITS,
  limitExceeded,
  type StateKey,
  type StateValue,
  Tuple,
} from '@ckpt/core';
import { ALLOWED_OPCODES, Op, opName, PROTOCOL4_OPCODES } from './opcodes.js';
import { referencedGlobals } from './scan.js';
import { PYTHON, type PythonInfo, withPython } from './values.js';

/** A pickle tried to reach a global that is not allowed: refused, nothing run. */
export class UnsafePickleError extends CkptError {
  override name = 'UnsafePickleError';
  /** The refused global, as `module.name`. */
  readonly global: string | undefined;
  constructor(message: string, details: CkptErrorDetails & { global?: string } = {}) {
    super('CKPT_UNSAFE_PICKLE', message, details);
    this.global = details.global;
  }
}

// ---- The values the machine works on before they become JavaScript values ----

/** A dict (or an OrderedDict, Counter, ...) being filled by SETITEM(S). */
export class PyDict {
  readonly entries = new Map<string, [unknown, unknown]>();
  attributes: unknown;
  constructor(readonly className?: string) {}
  set(key: unknown, value: unknown, fail: Fail): void {
    this.entries.set(canonicalKey(key, fail), [key, value]);
  }
}

export class PyList {
  readonly items: unknown[] = [];
}

export class PyTuple {
  constructor(
    readonly items: unknown[],
    readonly className?: string,
  ) {}
}

export class PySet {
  constructor(readonly items: unknown[]) {}
}

/** A float that happens to be whole: kept apart so it can be written back as a float. */
export class PyWholeFloat {
  constructor(readonly value: number) {}
}

/**
 * A value a handler builds in steps: BUILD hands it its state, and it turns
 * itself into a JavaScript value at the end (numpy arrays, say).
 */
export abstract class PyBuilt {
  abstract setState(state: unknown, fail: Fail): void;
  /** Its identity as a dict key, for the few classes Python hashes by value (a frozen dataclass, say). */
  dictKey?(fail: Fail): string;
  abstract toValue(convert: (value: unknown) => StateValue, fail: Fail): StateValue;
}

/** An instance of an allowed class, built from its arguments and state. */
export class PyInstance {
  readonly dict = new PyDict();
  readonly list: unknown[] = [];
  state: unknown;
  constructor(
    readonly className: string,
    readonly args: unknown[],
  ) {}
}

/** What GLOBAL pushes: a reference to an allowed handler. */
export class GlobalRef {
  constructor(
    readonly fullName: string,
    readonly handler: GlobalHandler,
  ) {}
}

export type Fail = (message: string) => never;

export interface GlobalHandler {
  /** REDUCE: the result of calling the global with `args`. */
  call?(args: unknown[], fail: Fail): unknown;
  /** NEWOBJ: the result of `cls.__new__(cls, *args)`. */
  create?(args: unknown[], fail: Fail): unknown;
  /** The JavaScript value of the global itself when it ends up in the data (a torch.dtype, say). */
  value?: () => StateValue;
}

export interface UnpicklerHooks {
  /** Resolves a GLOBAL (after Python 2 renames) to its handler; throws UnsafePickleError when not allowed. */
  resolveGlobal(module: string, name: string): GlobalHandler;
  /** Handles BINPERSID: the items of a ('storage', ...) persistent id. */
  persistentLoad(pid: unknown[], fail: Fail): unknown;
}

export interface UnpickleOptions {
  /** Where the pickle came from, for error messages. */
  path?: string;
  /** How deep the resulting tree may nest (default 1000). */
  maxDepth?: number;
  /** Also accept the protocol 4 opcodes of Python's default pickler (PROTOCOL4_OPCODES). */
  protocol4?: boolean;
}

function typeName(value: unknown): string {
  if (value === null) return 'None';
  if (value instanceof PyDict) return value.className ?? 'dict';
  if (value instanceof PyList) return 'list';
  if (value instanceof PyTuple) return 'tuple';
  if (value instanceof PySet) return 'set';
  if (value instanceof PyInstance) return value.className;
  if (value instanceof PyBuilt) return value.constructor.name;
  if (value instanceof GlobalRef) return value.fullName;
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}

/** Python's dict key identity: 1, 1.0 and True are one key. Tuples nest at most LIMITS.depth deep. */
function canonicalKey(key: unknown, fail: Fail, depth = 0): string {
  if (depth > LIMITS.depth) fail(`a dict key nests more than ${LIMITS.depth} tuples deep`);
  if (typeof key === 'string') return `s${key}`;
  if (typeof key === 'boolean') return `n${key ? 1 : 0}`;
  if (typeof key === 'number') return Number.isInteger(key) ? `n${key}` : `f${key}`;
  if (key instanceof PyWholeFloat) return `n${key.value}`;
  if (typeof key === 'bigint') return `n${key}`;
  if (key === null) return 'N';
  if (key instanceof Uint8Array) {
    if (key.byteLength > LIMITS.stringBytes) fail(`a bytes key of ${key.byteLength} bytes`);
    return `b${Buffer.from(key).toString('latin1')}`;
  }
  if (key instanceof PyTuple) return `t(${key.items.map((k) => canonicalKey(k, fail, depth + 1)).join(',')})`;
  if (key instanceof GlobalRef) return `g${key.fullName}`;
  if (key instanceof PyBuilt && key.dictKey) return `k${key.dictKey(fail)}`;
  return fail(`a ${typeName(key)} cannot be a dict key`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A GLOBAL line longer than this is no module or class name. */
const MAX_LINE = 4096;

/** Opcodes that create no value and hold no new memory (the others count against LIMITS.pickleObjects). */
const KEEPS_COUNT = new Set<number>([
  Op.POP,
  Op.POP_MARK,
  Op.APPEND,
  Op.APPENDS,
  Op.SETITEM,
  Op.SETITEMS,
  Op.BUILD,
  Op.STOP,
  Op.PROTO,
  Op.FRAME,
]);

/** Unpickles `bytes` with the allow-list in `hooks`; returns plain JavaScript values. */
export function unpickle(bytes: Uint8Array, hooks: UnpicklerHooks, options: UnpickleOptions = {}): StateValue {
  return unpickleFrom(bytes, 0, hooks, options).value;
}

/** Unpickles the pickle starting at `start`; also returns where it ended (files may hold several). */
export function unpickleFrom(
  bytes: Uint8Array,
  start: number,
  hooks: UnpicklerHooks,
  options: UnpickleOptions = {},
): { value: StateValue; end: number } {
  let pos = start;
  const fail: Fail = (message) => {
    throw new FormatError(`pickle: ${message} (at byte ${pos})`, { path: options.path });
  };
  const need = (n: number) => {
    if (pos + n > bytes.byteLength) fail(`truncated: ${n} more bytes needed, ${bytes.byteLength - pos} left`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u8 = () => {
    need(1);
    return bytes[pos++] as number;
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const take = (n: number) => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('truncated: a GLOBAL line has no end');
    if (end - pos > MAX_LINE) fail(`a GLOBAL line of ${end - pos} bytes (a module or class name is under ${MAX_LINE})`);
    const text = Buffer.from(bytes.subarray(pos, end)).toString('utf8');
    pos = end + 1;
    return text;
  };
  const text = (raw: Uint8Array) => {
    if (raw.byteLength > LIMITS.stringBytes) {
      throw limitExceeded(`pickle: a string of ${raw.byteLength} bytes (at byte ${pos})`, 'stringBytes');
    }
    try {
      return utf8.decode(raw);
    } catch {
      return fail('a string is not valid UTF-8');
    }
  };

  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const pop = () => {
    if (stack.length === 0) fail('stack underflow: the pickle is malformed');
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail('stack underflow: the pickle is malformed');
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const items = stack;
    const outer = metastack.pop();
    if (!outer) fail('MARK missing: the pickle is malformed');
    stack = outer as unknown[];
    return items;
  };
  const memoGet = (index: number) => {
    if (!memo.has(index)) fail(`memo entry ${index} is read before it is written`);
    return memo.get(index);
  };

  let ops = 0;
  let created = 0;
  for (;;) {
    const at = pos;
    const code = u8();
    // Budgets: a small deflated pickle can ask for a billion values or a billion steps.
    if (++ops > LIMITS.pickleOps) throw limitExceeded(`pickle: more opcodes than allowed (at byte ${at})`, 'pickleOps');
    if (!KEEPS_COUNT.has(code) && ++created > LIMITS.pickleObjects) {
      throw limitExceeded(`pickle: more values than allowed (at byte ${at})`, 'pickleObjects');
    }
    if (!ALLOWED_OPCODES.has(code) && !(options.protocol4 && PROTOCOL4_OPCODES.has(code))) {
      pos = at;
      refuseOpcode(code, bytes, start, at, hooks, options.path);
    }
    switch (code) {
      case Op.PROTO: {
        const version = u8();
        if (version < 2 || version > 5) fail(`unknown pickle protocol ${version}`);
        break;
      }
      case Op.STOP: {
        const result = pop();
        return { value: finalize(result, options.maxDepth ?? LIMITS.depth, fail), end: pos };
      }
      case Op.GLOBAL: {
        const [module, name] = renamePython2(line(), line());
        stack.push(new GlobalRef(`${module}.${name}`, hooks.resolveGlobal(module, name)));
        break;
      }
      case Op.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL without a module and a name');
        stack.push(new GlobalRef(`${module}.${name}`, hooks.resolveGlobal(module as string, name as string)));
        break;
      }
      case Op.FRAME:
        // Framing only groups the opcodes that follow for reading ahead.
        take(8);
        break;
      case Op.MEMOIZE:
        memo.set(memo.size, top());
        break;
      case Op.REDUCE: {
        const args = pop();
        const callable = top();
        if (!(callable instanceof GlobalRef) || !callable.handler.call) {
          fail(`REDUCE on ${typeName(callable)}, which is not an allowed callable`);
        }
        if (!(args instanceof PyTuple)) fail(`REDUCE with ${typeName(args)} arguments instead of a tuple`);
        stack[stack.length - 1] = (callable as GlobalRef).handler.call?.((args as PyTuple).items, fail);
        break;
      }
      case Op.NEWOBJ: {
        const args = pop();
        const cls = pop();
        if (!(cls instanceof GlobalRef) || !cls.handler.create)
          fail(`NEWOBJ on ${typeName(cls)}, which is not an allowed class`);
        if (!(args instanceof PyTuple)) fail(`NEWOBJ with ${typeName(args)} arguments instead of a tuple`);
        stack.push((cls as GlobalRef).handler.create?.((args as PyTuple).items, fail));
        break;
      }
      case Op.BUILD: {
        const state = pop();
        const target = top();
        if (target instanceof PyDict) target.attributes = state;
        else if (target instanceof PyInstance) target.state = state;
        else if (target instanceof PyBuilt) target.setState(state, fail);
        else if (isEmptyState(state)) {
          // torch writes empty state for tensors and parameters; nothing to set
        } else fail(`BUILD on ${typeName(target)} is not allowed`);
        break;
      }
      case Op.APPEND: {
        const item = pop();
        appendTo(top(), [item], fail);
        break;
      }
      case Op.APPENDS: {
        const items = popMark();
        appendTo(top(), items, fail);
        break;
      }
      case Op.SETITEM: {
        const value = pop();
        const key = pop();
        setItems(top(), [key, value], fail);
        break;
      }
      case Op.SETITEMS: {
        const items = popMark();
        if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
        setItems(top(), items, fail);
        break;
      }
      case Op.MARK:
        metastack.push(stack);
        stack = [];
        break;
      case Op.TUPLE: {
        const items = popMark(); // first: it replaces `stack`
        stack.push(new PyTuple(items));
        break;
      }
      case Op.TUPLE1:
        stack.push(new PyTuple([pop()]));
        break;
      case Op.TUPLE2: {
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b]));
        break;
      }
      case Op.TUPLE3: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b, c]));
        break;
      }
      case Op.NONE:
        stack.push(null);
        break;
      case Op.NEWTRUE:
        stack.push(true);
        break;
      case Op.NEWFALSE:
        stack.push(false);
        break;
      case Op.EMPTY_TUPLE:
        stack.push(new PyTuple([]));
        break;
      case Op.EMPTY_LIST:
        stack.push(new PyList());
        break;
      case Op.EMPTY_DICT:
        stack.push(new PyDict());
        break;
      case Op.EMPTY_SET:
        stack.push(new PySet([]));
        break;
      case Op.BININT: {
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      }
      case Op.BININT1:
        stack.push(u8());
        break;
      case Op.BININT2:
        stack.push(u16());
        break;
      case Op.LONG1: {
        const n = u8();
        stack.push(decodeLong(take(n)));
        break;
      }
      case Op.BINFLOAT: {
        need(8);
        const value = view.getFloat64(pos, false);
        pos += 8;
        stack.push(Number.isInteger(value) ? new PyWholeFloat(value) : value);
        break;
      }
      case Op.BINUNICODE:
        stack.push(text(take(u32())));
        break;
      case Op.SHORT_BINSTRING:
      case Op.SHORT_BINUNICODE:
        stack.push(text(take(u8())));
        break;
      case Op.SHORT_BINBYTES:
        stack.push(new Uint8Array(take(u8())));
        break;
      case Op.BINBYTES: {
        const length = u32();
        if (length > LIMITS.stringBytes)
          throw limitExceeded(`pickle: bytes of ${length} bytes (at byte ${pos})`, 'stringBytes');
        stack.push(new Uint8Array(take(length)));
        break;
      }
      case Op.BINPERSID: {
        const pid = pop();
        if (!(pid instanceof PyTuple) || pid.items[0] !== 'storage') {
          fail(`persistent id ${typeName(pid)} is not a ('storage', ...) tuple`);
        }
        stack.push(hooks.persistentLoad((pid as PyTuple).items, fail));
        break;
      }
      case Op.BINGET:
        stack.push(memoGet(u8()));
        break;
      case Op.LONG_BINGET:
        stack.push(memoGet(u32()));
        break;
      case Op.BINPUT:
        memo.set(u8(), top());
        break;
      case Op.LONG_BINPUT:
        memo.set(u32(), top());
        break;
    }
  }
}

/**
 * Refuses an opcode outside the allow-list, naming what the pickle would
 * have reached: an UnsafePickleError when it references globals that are not
 * allowed, a FormatError otherwise.
 */
function refuseOpcode(
  code: number,
  bytes: Uint8Array,
  start: number,
  at: number,
  hooks: UnpicklerHooks,
  path?: string,
): never {
  const refused = referencedGlobals(bytes, start).filter((name) => {
    const dot = name.lastIndexOf('.');
    try {
      hooks.resolveGlobal(name.slice(0, dot), name.slice(dot + 1));
      return false;
    } catch {
      return true;
    }
  });
  const message = `pickle: opcode ${opName(code)} is not allowed (only the protocol 2 opcodes torch writes are) (at byte ${at})`;
  if (refused.length > 0) {
    throw new UnsafePickleError(
      `${message}; the pickle references ${refused.join(', ')}, which are not allowed, and nothing was run`,
      {
        path,
        global: refused[0],
      },
    );
  }
  throw new FormatError(message, { path });
}

function isEmptyState(state: unknown): boolean {
  if (state === null) return true;
  if (state instanceof PyDict) return state.entries.size === 0;
  if (state instanceof PyTuple) return state.items.every(isEmptyState);
  return false;
}

function appendTo(target: unknown, items: unknown[], fail: Fail): void {
  // A loop, not push(...items): APPENDS may carry hundreds of thousands of items.
  if (target instanceof PyList) for (const item of items) target.items.push(item);
  else if (target instanceof PyInstance) for (const item of items) target.list.push(item);
  else fail(`APPEND to ${typeName(target)}; only lists can be appended to`);
}

function setItems(target: unknown, items: unknown[], fail: Fail): void {
  const dict = target instanceof PyDict ? target : target instanceof PyInstance ? target.dict : undefined;
  if (!dict) fail(`SETITEM on ${typeName(target)}; only dicts take items`);
  for (let i = 0; i < items.length; i += 2) dict?.set(items[i], items[i + 1], fail);
}

/** Little-endian two's complement, as pickle's LONG1 writes it. */
function decodeLong(raw: Uint8Array): number | bigint {
  if (raw.byteLength === 0) return 0;
  let value = 0n;
  for (let i = raw.byteLength - 1; i >= 0; i--) value = (value << 8n) | BigInt(raw[i] as number);
  if ((raw[raw.byteLength - 1] as number) & 0x80) value -= 1n << BigInt(raw.byteLength * 8);
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

// Python 2 names, as Python's _compat_pickle maps them (the ones that matter here).
const MODULE_RENAMES: Record<string, string> = {
  __builtin__: 'builtins',
  copy_reg: 'copyreg',
  cPickle: 'pickle',
  Queue: 'queue',
  repr: 'reprlib',
  UserDict: 'collections',
  UserList: 'collections',
  UserString: 'collections',
  commands: 'subprocess',
};
const NAME_RENAMES: Record<string, [string, string]> = {
  '__builtin__.xrange': ['builtins', 'range'],
  '__builtin__.unicode': ['builtins', 'str'],
  '__builtin__.long': ['builtins', 'int'],
  '__builtin__.basestring': ['builtins', 'str'],
  '__builtin__.reduce': ['functools', 'reduce'],
  '__builtin__.intern': ['sys', 'intern'],
  '__builtin__.execfile': ['builtins', 'exec'],
  'itertools.izip': ['builtins', 'zip'],
  'itertools.imap': ['builtins', 'map'],
  'UserDict.UserDict': ['collections', 'UserDict'],
};

export function renamePython2(module: string, name: string): [string, string] {
  const renamed = NAME_RENAMES[`${module}.${name}`];
  if (renamed) return renamed;
  return [MODULE_RENAMES[module] ?? module, name];
}

// ---- Turning the machine's values into JavaScript values ----

function finalize(root: unknown, maxDepth: number, fail: Fail): StateValue {
  const done = new Map<object, StateValue>();
  const inProgress = new Set<object>();

  const convert = (value: unknown, depth: number): StateValue => {
    if (value === null || typeof value !== 'object') return value as StateValue;
    if (value instanceof PyWholeFloat) return value.value;
    if (value instanceof Uint8Array) return value;
    const cached = done.get(value);
    if (cached !== undefined) return cached;
    if (depth > maxDepth) fail(`the data nests more than ${maxDepth} levels deep`);
    if (inProgress.has(value)) fail('the data refers to itself (a cycle)');
    inProgress.add(value);
    const result = build(value, depth + 1);
    inProgress.delete(value);
    if (result !== null && typeof result === 'object') done.set(value, result);
    return result;
  };

  const floatsOf = (pairs: Array<[StateKey, unknown]>): Set<StateKey> | undefined => {
    const floats = pairs.filter(([, v]) => v instanceof PyWholeFloat).map(([k]) => k);
    return floats.length > 0 ? new Set(floats) : undefined;
  };

  const keyOf = (key: unknown, depth: number): StateKey => {
    const converted = convert(key, depth);
    if (
      converted instanceof Tuple ||
      converted === null ||
      ['string', 'number', 'bigint', 'boolean'].includes(typeof converted)
    ) {
      return converted as StateKey;
    }
    return fail(`a ${typeName(key)} cannot be a key here`);
  };

  const dictValue = (entries: Iterable<[unknown, unknown]>, info: PythonInfo, depth: number): StateValue => {
    const pairs = [...entries].map(([k, v]) => [keyOf(k, depth), v] as [StateKey, unknown]);
    const floats = floatsOf(pairs);
    const facts: PythonInfo = { ...info, ...(floats ? { floats } : {}) };
    if (pairs.every(([k]) => typeof k === 'string')) {
      const object: Record<string, StateValue> = {};
      // defineProperty: a key such as "__proto__" must stay an ordinary key.
      for (const [k, v] of pairs) {
        Object.defineProperty(object, k as string, {
          value: convert(v, depth),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return Object.keys(facts).length > 0 ? withPython(object, facts) : object;
    }
    const map = new Map(pairs.map(([k, v]) => [k, convert(v, depth)]));
    return Object.keys(facts).length > 0 ? withPython(map, facts) : map;
  };

  const build = (value: object, depth: number): StateValue => {
    if (value instanceof PyDict) {
      const info: PythonInfo = {};
      if (value.className) info.className = value.className;
      if (value.attributes !== undefined && value.attributes !== null)
        info.attributes = convert(value.attributes, depth);
      return dictValue(value.entries.values(), info, depth);
    }
    if (value instanceof PyList) {
      const floats = floatsOf(value.items.map((v, i) => [i, v]));
      const list = value.items.map((v) => convert(v, depth));
      return floats ? withPython(list, { floats }) : list;
    }
    if (value instanceof PyTuple) {
      const floats = floatsOf(value.items.map((v, i) => [i, v]));
      const tuple = Tuple.fromItems(value.items.map((v) => convert(v, depth)));
      const info: PythonInfo = {
        ...(value.className ? { className: value.className } : {}),
        ...(floats ? { floats } : {}),
      };
      return Object.keys(info).length > 0 ? withPython(tuple, info) : tuple;
    }
    if (value instanceof PySet) return new Set(value.items.map((v) => convert(v, depth)));
    if (value instanceof PyInstance) return instanceValue(value, depth);
    if (value instanceof PyBuilt) return value.toValue((v) => convert(v, depth), fail);
    if (value instanceof GlobalRef) {
      if (value.handler.value) return value.handler.value();
      return withPython({ name: value.fullName }, { className: 'global' });
    }
    if (PYTHON in value || Object.isFrozen(value)) return value as StateValue; // tensors and values handlers made
    return fail(`cannot represent ${typeName(value)} in a checkpoint`);
  };

  const instanceValue = (value: PyInstance, depth: number): StateValue => {
    let state = value.state;
    let slots: unknown;
    if (state instanceof PyTuple && state.items.length === 2) [state, slots] = state.items;
    const entries: Array<[unknown, unknown]> = [...value.dict.entries.values()];
    for (const source of [state, slots]) {
      if (source instanceof PyDict) for (const entry of source.entries.values()) entries.push(entry);
      else if (source !== undefined && source !== null) entries.push(['__state__', source]);
    }
    if (value.list.length > 0) {
      const items = new PyList();
      for (const item of value.list) items.items.push(item);
      entries.push(['__items__', items]);
    }
    if (value.args.length > 0) entries.push(['__args__', new PyTuple(value.args)]);
    return dictValue(entries, { className: value.className }, depth);
  };

  return convert(root, 0);
}
