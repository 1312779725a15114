import { describe, expect, it } from 'vitest';
import { type CheckpointEvents, HookError, HookManager } from '../src/index.js';

interface TestEvents {
  beforeSave: { metrics: Record<string, number>; metadata: Record<string, string> };
  afterSave: { id: string };
  error: { hook?: string; event: string; error: unknown };
}

const saveContext = () => ({ metrics: { loss: 1 }, metadata: {} as Record<string, string> });

describe('HookManager', () => {
  it('runs handlers for their events in priority order, then registration order', async () => {
    const hooks = new HookManager<TestEvents>();
    const order: string[] = [];
    hooks.register('low', () => void order.push('low'), 'afterSave', { priority: -1 });
    hooks.register('first', () => void order.push('first'), ['afterSave']);
    hooks.register('high', () => void order.push('high'), 'afterSave', { priority: 10 });
    hooks.register('second', () => void order.push('second'), 'afterSave');
    hooks.register('other', () => void order.push('other'), 'beforeSave');
    await hooks.emit('afterSave', { id: 'x' });
    expect(order).toEqual(['high', 'first', 'second', 'low']);
    expect(hooks.list().map((h) => h.name)).toEqual(['high', 'first', 'second', 'other', 'low']);
  });

  it('awaits async handlers in turn', async () => {
    const hooks = new HookManager<TestEvents>();
    const order: string[] = [];
    hooks.register(
      'slow',
      async () => {
        await new Promise((r) => setTimeout(r, 20));
        order.push('slow');
      },
      'afterSave',
      { priority: 1 },
    );
    hooks.register('fast', () => void order.push('fast'), 'afterSave');
    await hooks.emit('afterSave', { id: 'x' });
    expect(order).toEqual(['slow', 'fast']);
  });

  it('lets a before-hook veto, by control, by false or by { veto }, and stops there', async () => {
    for (const handler of [
      (_: unknown, control: { veto(r: string): void }) => control.veto('too soon'),
      () => ({ veto: 'too soon' }),
    ]) {
      const hooks = new HookManager<TestEvents>();
      const ran: string[] = [];
      hooks.register('guard', handler as never, 'beforeSave', { priority: 1 });
      hooks.register('after', () => void ran.push('after'), 'beforeSave');
      const result = await hooks.emit('beforeSave', saveContext());
      expect(result.vetoed).toEqual({ hook: 'guard', reason: 'too soon' });
      expect(ran).toEqual([]);
    }
    const hooks = new HookManager<TestEvents>();
    hooks.register('no', () => false, 'beforeSave');
    expect((await hooks.emit('beforeSave', saveContext())).vetoed?.reason).toMatch(/vetoed by hook no/);
  });

  it('ignores vetoes of after-events', async () => {
    const hooks = new HookManager<TestEvents>();
    hooks.register('no', () => false, 'afterSave');
    expect((await hooks.emit('afterSave', { id: 'x' })).vetoed).toBeUndefined();
  });

  it('lets a hook amend the context, by mutation or by { amend }', async () => {
    const hooks = new HookManager<TestEvents>();
    hooks.register(
      'tag',
      (ctx) => {
        ctx.metadata.git = 'abc123';
      },
      'beforeSave',
    );
    hooks.register('amend', () => ({ amend: { metrics: { loss: 0.5 } } }), 'beforeSave');
    const context = saveContext();
    await hooks.emit('beforeSave', context);
    expect(context).toEqual({ metrics: { loss: 0.5 }, metadata: { git: 'abc123' } });
  });

  it('isolates a failing hook: the rest run, the failure is collected and emitted as an error event', async () => {
    const hooks = new HookManager<TestEvents>();
    const seen: unknown[] = [];
    hooks.register(
      'broken',
      () => {
        throw new Error('boom');
      },
      'afterSave',
      { priority: 1 },
    );
    hooks.register('fine', () => void seen.push('fine'), 'afterSave');
    hooks.register('watch', (ctx) => void seen.push(ctx), 'error');
    const result = await hooks.emit('afterSave', { id: 'x' });
    expect(seen[0]).toMatchObject({
      hook: 'broken',
      event: 'afterSave',
      error: expect.objectContaining({ message: 'boom' }),
    });
    expect(seen[1]).toBe('fine');
    expect(result.errors).toHaveLength(1);
    expect(hooks.errors).toHaveLength(1);
    hooks.clearErrors();
    expect(hooks.errors).toHaveLength(0);
  });

  it('fails the operation when a required hook fails', async () => {
    const hooks = new HookManager<TestEvents>();
    hooks.register(
      'must',
      async () => {
        throw new Error('disk quota');
      },
      'afterSave',
      { required: true },
    );
    const error = await hooks.emit('afterSave', { id: 'x' }).catch((e) => e);
    expect(error).toBeInstanceOf(HookError);
    expect(error).toMatchObject({ code: 'CKPT_HOOK_FAILED', hook: 'must', event: 'afterSave' });
  });

  it('times out slow async handlers and aborts their signal', async () => {
    const hooks = new HookManager<TestEvents>();
    let aborted = false;
    hooks.register(
      'stuck',
      (_ctx, control) =>
        new Promise((resolve) => {
          control.signal.addEventListener('abort', () => {
            aborted = true;
            resolve();
          });
        }),
      'afterSave',
      { timeoutMs: 30 },
    );
    const result = await hooks.emit('afterSave', { id: 'x' });
    expect(result.errors[0]?.error).toMatchObject({ code: 'CKPT_HOOK_TIMEOUT' });
    expect(aborted).toBe(true);
  });

  it('enables, disables and unregisters', async () => {
    const hooks = new HookManager<TestEvents>();
    let count = 0;
    hooks.register('counter', () => void count++, 'afterSave', { enabled: false });
    await hooks.emit('afterSave', { id: 'x' });
    hooks.enable('counter');
    await hooks.emit('afterSave', { id: 'x' });
    hooks.disable('counter');
    await hooks.emit('afterSave', { id: 'x' });
    expect(count).toBe(1);
    expect(hooks.unregister('counter')).toBe(true);
    expect(hooks.has('counter')).toBe(false);
    expect(() => hooks.enable('counter')).toThrow(expect.objectContaining({ code: 'CKPT_NOT_FOUND' }));
  });

  it('takes hook objects with a method per event or a catch-all', async () => {
    const hooks = new HookManager<CheckpointEvents>();
    const seen: string[] = [];
    hooks.register('methods', { afterSave: () => void seen.push('afterSave') }, ['afterSave', 'afterLoad']);
    hooks.register('all', { handle: (event) => void seen.push(`all:${event}`) }, ['afterSave', 'afterLoad']);
    await hooks.emit('afterSave', {
      experiment: 'e',
      record: { id: '1', path: 'p', metrics: {}, tags: [] },
      durationMs: 1,
    });
    await hooks.emit('afterLoad', {
      experiment: 'e',
      record: { id: '1', path: 'p', metrics: {}, tags: [] },
      state: {},
    });
    expect(seen).toEqual(['afterSave', 'all:afterSave', 'all:afterLoad']);
  });

  it('refuses bad registrations with typed errors', () => {
    const hooks = new HookManager<TestEvents>();
    hooks.register('a', () => undefined, 'afterSave');
    expect(() => hooks.register('a', () => undefined, 'afterSave')).toThrow(
      expect.objectContaining({ code: 'CKPT_CONFLICT' }),
    );
    expect(() => hooks.register('b', () => undefined, [])).toThrow(/no events/);
    expect(() => hooks.register('c', 42 as never, 'afterSave')).toThrow(/function or an object/);
    expect(() => hooks.register('d', () => undefined, 'afterSave', { timeoutMs: 0 })).toThrow(/positive/);
  });
});
