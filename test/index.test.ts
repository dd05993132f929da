import { describe, expect, it } from 'vitest';

describe("the public API (what a DAG file imports from 'hubflow')", () => {
  it('is exactly this small surface', async () => {
    const api = await import('hubflow');
    expect(Object.keys(api).sort()).toEqual([
      'HubflowError',
      'PermanentError',
      'RetryableError',
      'SkipTaskError',
      'TRIGGER_RULES',
      'TaskTimeoutError',
      'defineDag',
      'defineResource',
      'task',
    ]);
  });
});
