import type { Adapter } from './contract.ts';
import { postgresAdapter } from './postgres/adapter.ts';
import { snowflakeAdapter } from './snowflake/adapter.ts';

/** The warehouses hubflow loads: HUBFLOW_WAREHOUSE names one. */
export type WarehouseKind = 'postgres' | 'snowflake';

/**
 * A warehouse's adapter by its name, known without opening it (the staging resource asks it which
 * compression to write). This and open.ts are the only places that read HUBFLOW_WAREHOUSE's
 * value: everything past them asks the warehouse object (its dialect and adapter).
 */
export function adapterFor(kind: WarehouseKind): Adapter {
  return kind === 'snowflake' ? snowflakeAdapter : postgresAdapter;
}
