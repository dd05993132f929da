import { describe, expect, expectTypeOf, it } from 'vitest';
import { defineDag, defineResource, task } from 'hubflow';

describe("the public API (what a DAG file imports from 'hubflow')", () => {
  it('is exactly this small surface', async () => {
    const api = await import('hubflow');
    expect(Object.keys(api).sort()).toEqual([
      'HubflowError',
      'PermanentError',
      'RetryableError',
      'SkipTaskError',
      'TRIGGER_RULES',
      'TaskCancelledError',
      'TaskTimeoutError',
      'defineDag',
      'defineResource',
      'task',
    ]);
  });

  it('types a DAG end to end: upstreams by reference, resources as handles, durations as compact strings', () => {
    const counter = defineResource({ id: 'counter', deferJitter: '30s', open: () => ({ next: (): number => 1 }) });
    const count = task({ uses: { counter }, timeout: '1m', run: (ctx) => ctx.resources.counter.next() });
    const double = task({
      after: [count],
      retry: { base: '250ms', max: '1h30m' },
      run: async (ctx) => {
        const n = await ctx.upstream(count);
        expectTypeOf(n).toEqualTypeOf<number>();
        return n * 2;
      },
    });
    // @ts-expect-error a timeout is a duration string, not milliseconds
    task({ timeoutMs: 60_000, run: () => 1 });
    const dag = defineDag({ id: 'typed', schedule: { cron: '0 2 * * *', timezone: 'UTC', jitter: '90s' }, deadline: '1d7h', tasks: { count, double } });
    expect(dag.tasks.get('double')).toMatchObject({ upstream: ['count'], retry: { baseMs: 250, maxMs: 5_400_000 } });
    expect(dag.tasks.get('count')).toMatchObject({ uses: ['counter'], timeoutMs: 60_000 });
    expect(dag.jitterMs).toBe(90_000);
  });
});
