import { Redis } from 'ioredis';
import { sql } from 'kysely';
import type { Runtime } from '../server/runtime.ts';

/**
 * Drops what a bench made under `id` (its store schema and its `hf-<id>` Redis keys), then closes
 * the runtime. Keys go a thousand at a time: a wide fan leaves more than one DEL takes as arguments.
 */
export async function closeBenchRuntime(rt: Runtime, id: string): Promise<void> {
  await sql`drop schema if exists ${sql.id(id)} cascade`.execute(rt.db);
  const redis = new Redis(rt.redis.url);
  const keys = await redis.keys(`hf-${id}*`);
  for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
  redis.disconnect();
  await rt.close();
}
