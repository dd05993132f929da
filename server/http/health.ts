import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Runtime } from '../runtime.ts';

const PROBE_TIMEOUT_MS = 2_000;

// A dead Redis makes ioredis queue commands instead of failing them; the probe must still answer.
function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface Pingable {
  ping(): Promise<unknown>;
}

// BullMQ's IRedisClient does not declare ping; the ioredis client its proxy forwards to has it.
function canPing(client: object): client is Pingable {
  return typeof (client as Partial<Pingable>).ping === 'function';
}

export function registerHealth(app: FastifyInstance, rt: Runtime): void {
  const probes: Record<string, () => Promise<unknown>> = {
    postgres: () => sql`select 1`.execute(rt.db),
    // BullMQ 6.7 has no Queue#client any more: the Redis client lives on the queue's backend.
    redis: async () => {
      const client = await rt.engine.dispatcher.queue.getBackend().client;
      return canPing(client) ? client.ping() : client.info();
    },
  };

  app.get('/healthz', async (_request, reply) => {
    const results = await Promise.all(
      Object.entries(probes).map(async ([name, probe]) => {
        try {
          await withTimeout(probe(), name);
          return { name, ok: true };
        } catch (err) {
          rt.log.warn({ err, probe: name }, 'health probe failed');
          return { name, ok: false };
        }
      }),
    );
    const failed = results.filter((r) => !r.ok).map((r) => r.name);
    // The route is open, so it names what failed but keeps the reasons (hosts, users) in the log.
    if (failed.length) return reply.code(503).send({ ok: false, failed });
    return { ok: true };
  });
}
