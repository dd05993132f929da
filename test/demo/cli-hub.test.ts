import { Command } from 'commander';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { registerHubCommands } from '../../cli/hub.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../support.ts';
import { testHub } from './hub-support.ts';

const hub = testHub();
const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});
afterAll(() => hub.close());

/** Runs `hubflow hub ...` in this process and returns what it printed. */
async function run(...args: string[]): Promise<string> {
  const program = new Command('hubflow').exitOverride();
  registerHubCommands(program);
  let out = '';
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(['node', 'hubflow', 'hub', ...args]);
  } finally {
    write.mockRestore();
  }
  return out;
}

describe('hubflow hub', () => {
  it('seeds, mutates and counts the hub at HUBFLOW_HUB_URL', async () => {
    const schema = hub.schema('cli');
    Object.assign(process.env, { HUBFLOW_HUB_URL: TEST_DATABASE_URL, HUBFLOW_HUB_SCHEMA: schema, HUBFLOW_LOG_LEVEL: 'silent' });
    const seeded = await run('seed', '--tenants', '2', '--workers', '300', '--seed', '3');
    expect(seeded).toMatch(/workers\s+300/);
    expect(seeded).toMatch(new RegExp(`seeded ${schema}: [\\d,]+ rows in [\\d.]+ s`));
    await expect(run('seed', '--tenants', '2', '--workers', '300')).rejects.toThrow(/already has rows/);
    expect(await run('seed', '--tenants', '2', '--workers', '300', '--seed', '3', '--reset')).toMatch(/workers\s+300/);

    const mutated = JSON.parse(await run('mutate', '--seed', '4', '--rate', '0.05', '--json')) as { schema: string; hired: number; day: string };
    expect(mutated.schema).toBe(schema);
    expect(mutated.hired).toBeGreaterThan(0);
    expect(mutated.day).toBe('2026-01-05');

    const stats = JSON.parse(await run('stats', '--json')) as { entity: string; tenant: string | null; rows: number }[];
    const workers = stats.filter((s) => s.entity === 'workers');
    expect(workers).toHaveLength(2);
    expect(stats.find((s) => s.entity === 'currencies')).toEqual({ entity: 'currencies', tenant: null, rows: 8 });
    expect(await run('stats')).toMatch(/_global/);
  });

  it('rejects a bad rate before connecting', async () => {
    await expect(run('mutate', '--rate', '5')).rejects.toThrow(/--rate/);
  });

  it("uses the metadata store's PostgreSQL when HUBFLOW_HUB_URL is unset", async () => {
    const schema = hub.schema('store');
    const store = `t_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    delete process.env.HUBFLOW_HUB_URL;
    Object.assign(process.env, {
      HUBFLOW_DATABASE_URL: TEST_DATABASE_URL,
      HUBFLOW_REDIS_URL: TEST_REDIS_URL,
      HUBFLOW_DB_SCHEMA: store,
      HUBFLOW_QUEUE_PREFIX: `hf-${store}`,
      HUBFLOW_HUB_SCHEMA: schema,
      HUBFLOW_LOG_LEVEL: 'silent',
    });
    try {
      expect(await run('seed', '--tenants', '1', '--workers', '20')).toMatch(/workers\s+20/);
    } finally {
      await sql`drop schema if exists ${sql.id(store)} cascade`.execute(hub.db);
      const redis = new Redis(TEST_REDIS_URL);
      const keys = await redis.keys(`hf-${store}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
