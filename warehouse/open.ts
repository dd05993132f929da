import type { WarehouseKind } from './adapters.ts';
import type { Warehouse } from './contract.ts';
import { openPostgresWarehouse } from './postgres/dialect.ts';

export interface WarehouseOpenSettings {
  HUBFLOW_WAREHOUSE: WarehouseKind;
  HUBFLOW_WAREHOUSE_URL?: string | undefined;
  HUBFLOW_WAREHOUSE_SCHEMA: string;
  /** The metadata database, where the PostgreSQL warehouse lives unless HUBFLOW_WAREHOUSE_URL names another. */
  HUBFLOW_DATABASE_URL: string;
}

/** PostgreSQL (HUBFLOW_WAREHOUSE_URL, else the metadata database) or Snowflake (the SNOWFLAKE_* settings). */
export async function openWarehouse(s: WarehouseOpenSettings & Record<string, unknown>): Promise<Warehouse> {
  if (s.HUBFLOW_WAREHOUSE === 'snowflake') {
    // Loaded only when used: the driver is large and most installations never need it.
    const { openSnowflakeWarehouse, snowflakeOptionsFromEnv } = await import('./snowflake/dialect.ts');
    const options = snowflakeOptionsFromEnv(s as unknown as Record<string, string | undefined>);
    if (!options) throw new Error('HUBFLOW_WAREHOUSE=snowflake needs SNOWFLAKE_ACCOUNT and the other SNOWFLAKE_* settings');
    return openSnowflakeWarehouse(options);
  }
  return openPostgresWarehouse(s.HUBFLOW_WAREHOUSE_URL ?? s.HUBFLOW_DATABASE_URL, s.HUBFLOW_WAREHOUSE_SCHEMA);
}
