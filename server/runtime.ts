import type { ConnectionOptions } from 'bullmq';
import path from 'node:path';
import { loadConfig, type Config } from '../core/config.ts';
import { checkConnection, resolvePostgres } from './connections/postgres.ts';
import { ServiceWatch, untilReachable } from './connections/outage.ts';
import type { ResolvedService } from './connections/instance.ts';
import { pingRedis, resolveRedis } from './connections/redis.ts';
import { openConnections, type OwnedConnections } from '../tasks/connections.ts';
import { Dispatcher } from './engine/dispatch.ts';
import { Engine } from './engine/engine.ts';
import { createEscalator } from './engine/escalation.ts';
import { ResourceHandles } from './engine/resource-handles.ts';
import { BUNDLED_DAGS_DIR, loadDagFolder } from './engine/dag-imports.ts';
import type { DagRegistry } from './engine/loader.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { migrateStore, openStore, type Store } from './store/db.ts';

const PROBE_TIMEOUT_MS = 3_000;

export { BUNDLED_DAGS_DIR };

/** Everything a hubflow process needs, opened once: services, store, DAGs and the engine. */
export interface Runtime {
  config: Config;
  log: Logger;
  db: Store;
  redis: ResolvedService;
  postgres: ResolvedService;
  connection: ConnectionOptions;
  dags: DagRegistry;
  engine: Engine;
  /** The hub, the warehouse, the staging and outbox folders, for the commands that read them. */
  connections: OwnedConnections;
  /** The handles tasks get for the resources they use: opened on first use, closed with the runtime. */
  resources: ResourceHandles;
  /** PostgreSQL and Redis as this process sees them: report connection errors here, wait on untilUp(). */
  services: ServiceWatch;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  config?: Config;
  log?: Logger;
  /** Already-loaded DAGs (tests, benchmarks); otherwise the DAG folder is loaded. */
  dags?: DagRegistry;
  poolSize?: number;
  /** Log level when HUBFLOW_LOG_LEVEL is not set. */
  defaultLogLevel?: string;
  /**
   * Wait (capped exponential backoff) for a configured PostgreSQL or Redis that cannot be
   * reached right now, instead of failing: the long-running processes and the run watchers.
   */
  waitForServices?: boolean;
}

export async function openRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const config = options.config ?? loadConfig();
  const log = options.log ?? createLogger(config.HUBFLOW_LOG_LEVEL ?? options.defaultLogLevel ?? 'info');
  const wait = options.waitForServices ?? false;
  const redis = await resolveRedis(config, log, { wait });
  let postgres: ResolvedService | undefined;
  try {
    postgres = await resolvePostgres(config, log, { wait });
    const db = openStore(postgres.url, config.HUBFLOW_DB_SCHEMA, options.poolSize);
    const migrate = () => migrateAgainOnRace(() => migrateStore(db, config.HUBFLOW_DB_SCHEMA));
    await (wait ? untilReachable({ name: 'PostgreSQL', url: postgres.url }, log, migrate) : migrate());
    const dags = options.dags ?? (await loadDagFolder(path.resolve(config.HUBFLOW_DAGS_DIR ?? BUNDLED_DAGS_DIR)));
    for (const e of dags.errors) log.error({ event: 'dag_error', file: e.file, dagId: e.dagId, field: e.field }, e.message);
    await registerDags(db, dags);
    const connection: ConnectionOptions = { url: redis.url };
    const { id: installation } = await db.selectFrom('installation').select('id').executeTakeFirstOrThrow();
    const dispatcher = new Dispatcher(connection, config.HUBFLOW_QUEUE_PREFIX, installation);
    const engine = new Engine(db, dags, dispatcher, log, config, createEscalator(log, config.HUBFLOW_ALERT_WEBHOOK));
    const pg = postgres;
    const connections = openConnections(config, pg.url);
    const resources = new ResourceHandles({ ...config, HUBFLOW_DATABASE_URL: pg.url });
    const services = new ServiceWatch(
      [
        { name: 'PostgreSQL', url: pg.url, probe: () => checkConnection(pg.url, PROBE_TIMEOUT_MS) },
        { name: 'Redis', url: redis.url, probe: () => pingRedis(redis.url, PROBE_TIMEOUT_MS) },
      ],
      log,
    );
    // Unheard, BullMQ prints every reconnection error of the queue to the console.
    dispatcher.queue.on('error', (err) => {
      if (!services.failed(err)) log.error({ err }, 'queue connection error');
    });
    return {
      config,
      log,
      db,
      redis,
      postgres: pg,
      connection,
      dags,
      engine,
      connections,
      resources,
      services,
      async close() {
        services.close();
        await engine.close();
        await dispatcher.close();
        await resources.close();
        await connections.close();
        await db.destroy();
        await pg.stop();
        await redis.stop();
      },
    };
  } catch (err) {
    await postgres?.stop();
    await redis.stop();
    throw err;
  }
}

/**
 * Migrating reads the catalogue of every schema in the database (kysely's introspection), so a
 * schema another installation drops at that moment fails it with 3F000 (invalid schema name)
 * though nothing is wrong here: that is tried again, a few times.
 */
async function migrateAgainOnRace(migrate: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await migrate();
    } catch (err) {
      const code = ((err as { cause?: { code?: unknown } }).cause ?? (err as { code?: unknown })).code;
      if (code !== '3F000' || attempt >= 3) throw err;
    }
  }
}

/**
 * Records the loaded DAGs in the store (pause state lives there, so it survives restarts) and
 * the pools' sizes (slot counting happens in the store, across every worker).
 */
async function registerDags(db: Store, dags: DagRegistry): Promise<void> {
  const pools = [...dags.resources.values()].filter((r) => r.slots !== undefined).map((r) => ({ resource_id: r.id, slots: r.slots! }));
  if (pools.length) {
    await db
      .insertInto('resource_pools')
      .values(pools)
      .onConflict((oc) => oc.column('resource_id').doUpdateSet((eb) => ({ slots: eb.ref('excluded.slots') })))
      .execute();
  }
  const rows = [...dags.dags.values()].map((d) => ({ dag_id: d.id, file: d.file ?? null }));
  if (!rows.length) return;
  await db
    .insertInto('dags')
    .values(rows)
    .onConflict((oc) => oc.column('dag_id').doUpdateSet((eb) => ({ file: eb.ref('excluded.file'), updated_at: new Date() })))
    .execute();
}
