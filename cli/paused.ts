import type { Config } from '../core/config.ts';
import type { ResolvedService } from '../server/connections/instance.ts';

/** PostgreSQL's codes for a schema or table that does not exist (yet). */
const NOT_CREATED = new Set(['3F000', '42P01']);

/**
 * Which DAGs are paused, read straight from the store: listing DAGs needs neither Redis, nor
 * migrations, nor the engine. A store that was never set up has paused nothing.
 */
export async function pausedDags(config: Config): Promise<Map<string, boolean>> {
  // A configured PostgreSQL is read at once; only an embedded one needs finding (or starting).
  const configured = config.HUBFLOW_DATABASE_URL;
  const postgres: Pick<ResolvedService, 'url' | 'stop'> = configured ? { url: configured, stop: async () => undefined } : await resolved(config);
  const pg = await importPg();
  const client = new pg.Client({ connectionString: postgres.url });
  try {
    await client.connect().catch(async (err: unknown) => {
      // The message that says what to do about a configured server that does not answer.
      if (configured) await resolved(config);
      throw err;
    });
    const { rows } = await client.query<{ dag_id: string; is_paused: boolean }>(
      `select dag_id, is_paused from ${client.escapeIdentifier(config.HUBFLOW_DB_SCHEMA)}.dags`,
    );
    return new Map(rows.map((r) => [r.dag_id, r.is_paused]));
  } catch (err) {
    if (NOT_CREATED.has((err as { code?: string }).code ?? '')) return new Map();
    throw err;
  } finally {
    await client.end().catch(() => undefined);
    await postgres.stop();
  }
}

async function resolved(config: Config): Promise<ResolvedService> {
  const [{ resolvePostgres }, { createLogger }] = await Promise.all([import('../server/connections/postgres.ts'), import('../core/log.ts')]);
  return resolvePostgres(config, createLogger(config.HUBFLOW_LOG_LEVEL ?? 'warn'));
}

/**
 * pg asks, as it loads, whether it runs on Cloudflare Workers: by `navigator.userAgent` where
 * there is a navigator (Node 21 and later), else by making a fetch Response, which on Node 20
 * loads the whole fetch stack (undici: some 12 MB and 40 ms, a sixth of what listing DAGs may
 * cost). On Node 20 a navigator that says Node.js stands there while pg loads, and only then.
 */
async function importPg(): Promise<typeof import('pg').default> {
  if ('navigator' in globalThis) return (await import('pg')).default;
  Object.defineProperty(globalThis, 'navigator', { value: { userAgent: 'Node.js' }, configurable: true });
  try {
    return (await import('pg')).default;
  } finally {
    Reflect.deleteProperty(globalThis, 'navigator');
  }
}
