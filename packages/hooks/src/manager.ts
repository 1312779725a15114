import {
  ConflictError,
  type EmitResult,
  type EventFailure,
  type EventSink,
  HookError,
  InvalidArgumentError,
  NotFoundError,
} from '@ckpt/core';

/** What a handler may return: nothing, `false` or `{ veto }` to veto, `{ amend }` to change the context. */
// biome-ignore lint/suspicious/noConfusingVoidType: handlers with no return statement return void
export type HookResult = void | undefined | boolean | { veto?: string; amend?: Record<string, unknown> };

export interface HookControl {
  /** The event being handled. */
  readonly event: string;
  /** The hook's name. */
  readonly hook: string;
  /** Stops a `before*` event: the operation is skipped with `reason`. */
  veto(reason: string): void;
  /** Aborted when the handler times out. */
  readonly signal: AbortSignal;
}

export type HookHandler<C> = (context: C, control: HookControl) => HookResult | Promise<HookResult>;

/** A hook as an object: one method per event it handles, or a catch-all `handle`. */
export interface HookObject<Events> {
  handle?(
    event: keyof Events & string,
    context: Events[keyof Events],
    control: HookControl,
  ): HookResult | Promise<HookResult>;
}

export interface HookOptions {
  /** Higher runs first; equal priorities run in registration order (default 0). */
  priority?: number;
  /** A failure of a required hook fails the operation; others are isolated and reported. */
  required?: boolean;
  /** How long an async handler may take before it counts as failed (default 30 s). */
  timeoutMs?: number;
  /** Registered but not run until enabled (default true). */
  enabled?: boolean;
}

export interface HookInfo {
  name: string;
  events: string[];
  priority: number;
  required: boolean;
  enabled: boolean;
  timeoutMs: number;
}

/** A hook that threw or timed out (the event contract's failure, in @ckpt/core). */
export type HookFailure = EventFailure;

/** A required hook failed, so the operation it guards fails too: core's HookError, with `hook` and `event`. */
function requiredHookFailed(hook: string, event: string, cause: unknown): HookError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new HookError(`required hook ${JSON.stringify(hook)} failed on ${event}: ${message}`, { hook, event, cause });
}

interface Registered {
  name: string;
  events: Set<string>;
  run: (event: string, context: unknown, control: HookControl) => HookResult | Promise<HookResult>;
  priority: number;
  required: boolean;
  enabled: boolean;
  timeoutMs: number;
  order: number;
}

/** The payload of the `error` event every manager emits when a hook fails. */
export interface HookErrorContext {
  hook: string;
  event: string;
  error: unknown;
}

const DEFAULT_TIMEOUT_MS = 30_000;

function isVetoable(event: string): boolean {
  return event.startsWith('before');
}

/**
 * Typed event hooks. `Events` maps each event name to its context type.
 * Handlers run in priority order; a failing handler is isolated (recorded in
 * `errors` and reported as an `error` event) unless it is required; a
 * `before*` handler can veto the operation or amend its context.
 */
export class HookManager<Events extends object> implements EventSink<Events> {
  readonly #hooks = new Map<string, Registered>();
  readonly #errors: HookFailure[] = [];
  #order = 0;

  /** Failures collected so far (most recent last). */
  get errors(): readonly HookFailure[] {
    return this.#errors;
  }

  clearErrors(): void {
    this.#errors.length = 0;
  }

  register<K extends keyof Events & string>(
    name: string,
    handler:
      | HookHandler<Events[K]>
      | HookObject<Events>
      | (Partial<{ [E in keyof Events & string]: HookHandler<Events[E]> }> & HookObject<Events>),
    events: K | readonly K[],
    options: HookOptions = {},
  ): this {
    if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('a hook needs a name');
    if (this.#hooks.has(name)) throw new ConflictError(`a hook named ${JSON.stringify(name)} is already registered`);
    const list = (Array.isArray(events) ? events : [events]) as string[];
    if (list.length === 0) throw new InvalidArgumentError(`hook ${JSON.stringify(name)} handles no events`);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw new InvalidArgumentError(`hook ${JSON.stringify(name)}: timeoutMs must be positive`);
    let run: Registered['run'];
    if (typeof handler === 'function') {
      run = (_event, context, control) => (handler as HookHandler<unknown>)(context, control);
    } else if (handler && typeof handler === 'object') {
      const object = handler as Record<string, unknown> & HookObject<Events>;
      run = (event, context, control) => {
        const method = object[event];
        if (typeof method === 'function') return (method as HookHandler<unknown>).call(object, context, control);
        if (typeof object.handle === 'function')
          return object.handle(event as keyof Events & string, context as Events[keyof Events], control);
        return undefined;
      };
    } else {
      throw new InvalidArgumentError(`hook ${JSON.stringify(name)} must be a function or an object`);
    }
    this.#hooks.set(name, {
      name,
      events: new Set(list),
      run,
      priority: options.priority ?? 0,
      required: options.required ?? false,
      enabled: options.enabled ?? true,
      timeoutMs,
      order: this.#order++,
    });
    return this;
  }

  unregister(name: string): boolean {
    return this.#hooks.delete(name);
  }

  has(name: string): boolean {
    return this.#hooks.has(name);
  }

  enable(name: string): void {
    this.#get(name).enabled = true;
  }

  disable(name: string): void {
    this.#get(name).enabled = false;
  }

  #get(name: string): Registered {
    const hook = this.#hooks.get(name);
    if (!hook) throw new NotFoundError(`no hook named ${JSON.stringify(name)}`);
    return hook;
  }

  list(): HookInfo[] {
    return this.#ordered().map((h) => ({
      name: h.name,
      events: [...h.events],
      priority: h.priority,
      required: h.required,
      enabled: h.enabled,
      timeoutMs: h.timeoutMs,
    }));
  }

  #ordered(): Registered[] {
    return [...this.#hooks.values()].sort((a, b) => b.priority - a.priority || a.order - b.order);
  }

  /**
   * Runs the enabled hooks for `event`, in priority order. Returns the veto,
   * if a `before*` hook vetoed (later hooks do not run), and the failures of
   * non-required hooks. Throws a HookError when a required hook fails.
   */
  async emit<K extends keyof Events & string>(event: K, context: Events[K]): Promise<EmitResult> {
    const result: EmitResult = { errors: [] };
    for (const hook of this.#ordered()) {
      if (!hook.enabled || !hook.events.has(event)) continue;
      let vetoReason: string | undefined;
      const abort = new AbortController();
      const control: HookControl = {
        event,
        hook: hook.name,
        signal: abort.signal,
        veto: (reason) => {
          vetoReason = reason;
        },
      };
      let outcome: HookResult;
      try {
        outcome = await withTimeout(() => hook.run(event, context, control), hook.timeoutMs, abort);
      } catch (error) {
        const failure: HookFailure = { hook: hook.name, event, error, at: new Date() };
        this.#errors.push(failure);
        result.errors.push(failure);
        if (event !== 'error')
          await this.emit('error' as K, { hook: hook.name, event, error } as Events[K]).catch(() => undefined);
        if (hook.required) throw requiredHookFailed(hook.name, event, error);
        continue;
      }
      if (outcome === false) vetoReason ??= `vetoed by hook ${hook.name}`;
      if (outcome && typeof outcome === 'object') {
        if (outcome.amend) Object.assign(context as object, outcome.amend);
        if (outcome.veto !== undefined) vetoReason ??= outcome.veto;
      }
      if (vetoReason !== undefined && isVetoable(event)) {
        result.vetoed = { hook: hook.name, reason: vetoReason };
        return result;
      }
    }
    return result;
  }
}

async function withTimeout<T>(run: () => T | Promise<T>, timeoutMs: number, abort: AbortController): Promise<T> {
  const value = run();
  if (!(value instanceof Promise)) return value;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Reject first: an aborted handler that resolves at once must still count as timed out.
      reject(new HookError(`timed out after ${timeoutMs} ms`, { code: 'CKPT_HOOK_TIMEOUT' }));
      abort.abort();
    }, timeoutMs);
  });
  try {
    return await Promise.race([value, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
