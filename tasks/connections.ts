import type { Config } from '../core/config.ts';
import { openHub, type HubDb } from '../hub/db.ts';
import type { Warehouse } from '../warehouse/contract.ts';
import { openWarehouse } from '../warehouse/open.ts';
import { openOutbox, openStaging } from './resources.ts';

/** The systems the commands read themselves (the demo, history approvals), opened on first use. */
export interface Connections {
  hub(): HubDb;
  readonly hubSchema: string;
  warehouse(): Promise<Warehouse>;
  readonly stagingDir: string;
  readonly outboxDir: string;
}

export interface OwnedConnections extends Connections {
  close(): Promise<void>;
}

export function openConnections(config: Config, databaseUrl: string): OwnedConnections {
  let hub: HubDb | undefined;
  let warehouse: Promise<Warehouse> | undefined;
  const settings = { ...config, HUBFLOW_DATABASE_URL: databaseUrl };
  return {
    hubSchema: config.HUBFLOW_HUB_SCHEMA,
    stagingDir: openStaging(config).dir,
    outboxDir: openOutbox(config).dir,
    hub: () => (hub ??= openHub(settings.HUBFLOW_HUB_URL ?? settings.HUBFLOW_DATABASE_URL)),
    warehouse: () => (warehouse ??= openWarehouse(settings)),
    async close() {
      await hub?.destroy();
      await (await warehouse?.catch(() => undefined))?.close();
    },
  };
}
