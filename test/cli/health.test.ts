import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

function health(env: Record<string, string>) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('HUBFLOW_')));
  const result = spawnSync(process.execPath, [path.join(root, 'bin/hubflow.js'), 'health', '--json'], {
    env: { ...clean, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, out: JSON.parse(result.stdout) as { ok: boolean; checks: { service: string; ok: boolean; url?: string; error?: string }[] } };
}

describe('hubflow health', () => {
  it('exits 0 when PostgreSQL and Redis answer', () => {
    const { status, out } = health({ HUBFLOW_DATABASE_URL: TEST_DATABASE_URL, HUBFLOW_REDIS_URL: TEST_REDIS_URL });
    expect(status).toBe(0);
    expect(out.checks.map((c) => [c.service, c.ok])).toEqual([
      ['postgres', true],
      ['redis', true],
    ]);
  });

  it('exits 1 naming the one that does not answer, its password masked', () => {
    const { status, out } = health({ HUBFLOW_DATABASE_URL: 'postgres://u:hunter2hunter2@127.0.0.1:1/x', HUBFLOW_REDIS_URL: TEST_REDIS_URL });
    expect(status).toBe(1);
    expect(out.ok).toBe(false);
    expect(out.checks[0]).toMatchObject({
      service: 'postgres',
      ok: false,
      url: 'postgres://u:***@127.0.0.1:1/x',
      error: expect.stringContaining('ECONNREFUSED'),
    });
    expect(out.checks[1]).toMatchObject({ service: 'redis', ok: true });
  });
});
