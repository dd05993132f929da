import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.ts';
import { maskUrl, pidAlive, type ResolvedService } from '../../server/connections/instance.ts';
import { resolvePostgres } from '../../server/connections/postgres.ts';
import { resolveRedis } from '../../server/connections/redis.ts';
import { createLogger } from '../../core/log.ts';

const log = createLogger('silent');
const homes: string[] = [];

async function tempHome(): Promise<string> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'hubflow-conn-'));
  homes.push(home);
  return home;
}

afterAll(async () => {
  await Promise.all(homes.map((home) => rm(home, { recursive: true, force: true })));
});

async function redisGet(url: string, key: string, value?: string): Promise<string | null> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await client.connect();
    if (value !== undefined) await client.set(key, value);
    return await client.get(key);
  } finally {
    client.disconnect();
  }
}

async function selectOne(url: string): Promise<unknown> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const result = await client.query<{ one: number; db: string }>('select 1 as one, current_database() as db');
    return result.rows[0];
  } finally {
    await client.end();
  }
}

describe('resolveRedis', () => {
  it('uses HUBFLOW_REDIS_URL when set', async () => {
    const config = loadConfig({ HUBFLOW_REDIS_URL: 'redis://127.0.0.1:6379', HUBFLOW_HOME: await tempHome() });
    const redis = await resolveRedis(config, log);
    expect(redis).toMatchObject({ url: 'redis://127.0.0.1:6379', source: 'env' });
    await redis.stop();
    expect(await redisGet(redis.url, 'hubflow-conn-test-never-set')).toBeNull();
  });

  it('names a HUBFLOW_REDIS_URL that does not answer', async () => {
    const config = loadConfig({ HUBFLOW_REDIS_URL: 'redis://127.0.0.1:1' });
    await expect(resolveRedis(config, log)).rejects.toThrow(/HUBFLOW_REDIS_URL redis:\/\/127\.0\.0\.1:1 did not answer PING/);
  });

  it('uses the Redis on 127.0.0.1:6379 when nothing is configured', async () => {
    const redis = await resolveRedis(loadConfig({ HUBFLOW_HOME: await tempHome() }), log);
    expect(redis).toMatchObject({ url: 'redis://127.0.0.1:6379', source: 'local' });
  });

  it('starts a private redis-server, shares it with a second resolve, and keeps its data across restarts', async () => {
    const home = await tempHome();
    const config = loadConfig({ HUBFLOW_HOME: home });
    const instanceFile = path.join(home, 'redis', 'instance.json');

    const first = await resolveRedis(config, log, { probeLocal: false });
    let second: ResolvedService | undefined;
    try {
      expect(first.source).toBe('embedded');
      expect(first.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      expect(first.url).not.toBe('redis://127.0.0.1:6379');
      const instance = JSON.parse(await readFile(instanceFile, 'utf8')) as { port: number; pid: number };
      expect(first.url).toBe(`redis://127.0.0.1:${instance.port}`);
      expect(pidAlive(instance.pid)).toBe(true);
      expect(await redisGet(first.url, 'k', 'v')).toBe('v');

      second = await resolveRedis(config, log, { probeLocal: false });
      expect(second).toMatchObject({ url: first.url, source: 'embedded' });
      await second.stop();
      expect(await redisGet(first.url, 'k')).toBe('v');

      await first.stop();
      expect(pidAlive(instance.pid)).toBe(false);
      await expect(readFile(instanceFile, 'utf8')).rejects.toThrow(/ENOENT/);

      second = await resolveRedis(config, log, { probeLocal: false });
      expect(second.source).toBe('embedded');
      expect(await redisGet(second.url, 'k')).toBe('v');
    } finally {
      await first.stop();
      await second?.stop();
    }
  });

  it('says what to do when there is no Redis at all', async () => {
    const config = loadConfig({ HUBFLOW_HOME: await tempHome() });
    const savedPath = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const attempt = resolveRedis(config, log, { probeLocal: false });
      await expect(attempt).rejects.toThrow(/HUBFLOW_REDIS_URL=redis:\/\/host:port/);
      await expect(attempt).rejects.toThrow(/apt-get install redis-server \/ brew install redis/);
    } finally {
      process.env.PATH = savedPath;
    }
  });
});

describe('resolvePostgres', () => {
  it('uses HUBFLOW_DATABASE_URL when set', async () => {
    const url = 'postgres://postgres@127.0.0.1:5432/test';
    const db = await resolvePostgres(loadConfig({ HUBFLOW_DATABASE_URL: url }), log);
    expect(db).toMatchObject({ url, source: 'env' });
    await db.stop();
  });

  it('names a HUBFLOW_DATABASE_URL that does not connect, without its password', async () => {
    const config = loadConfig({ HUBFLOW_DATABASE_URL: 'postgres://x:secret@127.0.0.1:1/db' });
    const attempt = resolvePostgres(config, log);
    await expect(attempt).rejects.toThrow(/HUBFLOW_DATABASE_URL postgres:\/\/x:\*\*\*@127\.0\.0\.1:1\/db did not accept/);
    await expect(attempt).rejects.not.toThrow(/secret/);
  });

  it('masks passwords in URLs', () => {
    expect(maskUrl('postgres://u:p%40ss@h:5432/db')).toBe('postgres://u:***@h:5432/db');
    expect(maskUrl('redis://:pw@h:6379')).toBe('redis://:***@h:6379');
    expect(maskUrl('postgres://u@h/db')).toBe('postgres://u@h/db');
    expect(maskUrl('not a url://u:pw@h')).toBe('not a url://u:***@h');
  });

  it('starts an embedded PostgreSQL, shares it with a second resolve, and restarts it on its data', async () => {
    const home = await tempHome();
    const config = loadConfig({ HUBFLOW_HOME: home });
    const instanceFile = path.join(home, 'postgres', 'instance.json');

    const first = await resolvePostgres(config, log);
    let second: ResolvedService | undefined;
    try {
      expect(first.source).toBe('embedded');
      expect(await selectOne(first.url)).toEqual({ one: 1, db: 'hubflow' });
      const instance = JSON.parse(await readFile(instanceFile, 'utf8')) as Record<string, unknown>;
      expect(instance).toMatchObject({ user: 'hubflow', password: expect.any(String), port: expect.any(Number) });
      expect(pidAlive(instance.pid)).toBe(true);

      second = await resolvePostgres(config, log);
      expect(second).toMatchObject({ url: first.url, source: 'embedded' });
      await second.stop();
      expect(await selectOne(first.url)).toEqual({ one: 1, db: 'hubflow' });

      await first.stop();
      expect(pidAlive(instance.pid)).toBe(false);
      await expect(selectOne(first.url)).rejects.toThrow();

      // The data dir is initialised now, so this only starts the server (with the saved password).
      second = await resolvePostgres(config, log);
      expect(second.source).toBe('embedded');
      expect(await selectOne(second.url)).toEqual({ one: 1, db: 'hubflow' });
    } finally {
      await first.stop();
      await second?.stop();
    }
  });
});
