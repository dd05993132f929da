import path from 'node:path';
import type { Config } from '../../core/config.ts';
import { openHub, type HubDb } from '../../hub/db.ts';
import type { Store } from '../store/db.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { openPostgresWarehouse } from '../../warehouse/postgres/dialect.ts';

/**
 * The systems a task talks to, opened on first use and shared by every task of the process:
 * the hub, the warehouse, the metadata store, and the staging and outbox folders.
 */
export interface Connections {
  /** The hub: HUBFLOW_HUB_URL, else the metadata database (where the demo hub lives). */
  hub(): HubDb;
  readonly hubSchema: string;
  /** PostgreSQL (HUBFLOW_WAREHOUSE_URL, else the metadata database) or Snowflake. */
  warehouse(): Promise<Warehouse>;
  readonly store: Store;
  readonly stagingDir: string;
  readonly outboxDir: string;
  readonly config: Config;
}

export interface OwnedConnections extends Connections {
  close(): Promise<void>;
}

export function openConnections(config: Config, databaseUrl: string, store: Store): OwnedConnections {
  let hub: HubDb | undefined;
  let warehouse: Promise<Warehouse> | undefined;
  const home = path.resolve(config.HUBFLOW_HOME);
  return {
    config,
    store,
    hubSchema: config.HUBFLOW_HUB_SCHEMA,
    stagingDir: path.resolve(config.HUBFLOW_STAGING_DIR ?? path.join(home, 'staging')),
    outboxDir: path.resolve(config.HUBFLOW_OUTBOX_DIR ?? path.join(home, 'outbox')),
    hub: () => (hub ??= openHub(config.HUBFLOW_HUB_URL ?? databaseUrl)),
    warehouse: () => (warehouse ??= openWarehouse(config, databaseUrl)),
    async close() {
      await hub?.destroy();
      await (await warehouse?.catch(() => undefined))?.close();
    },
  };
}

async function openWarehouse(config: Config, databaseUrl: string): Promise<Warehouse> {
  if (config.HUBFLOW_WAREHOUSE === 'snowflake') {
    // Loaded only when used: the driver is large and most installations never need it.
    const { openSnowflakeWarehouse, snowflakeOptionsFromEnv } = await import('../../warehouse/snowflake/dialect.ts');
    const options = snowflakeOptionsFromEnv(config as unknown as Record<string, string | undefined>);
    if (!options) throw new Error('HUBFLOW_WAREHOUSE=snowflake needs SNOWFLAKE_ACCOUNT and the other SNOWFLAKE_* settings');
    return openSnowflakeWarehouse(options);
  }
  return openPostgresWarehouse(config.HUBFLOW_WAREHOUSE_URL ?? databaseUrl, config.HUBFLOW_WAREHOUSE_SCHEMA);
}
