import type { Entities, Entity } from '../hub/entities.ts';
import { ident } from '../hub/sql-names.ts';

/**
 * One hub captured by CDC: where it is, which of its tables (the hub's entities) are captured,
 * and the publication and replication slot that carry their changes. One slot per hub database,
 * not per tenant: tenants are told apart by each change's tenant column.
 */
export interface CdcSource {
  /** The hub's PostgreSQL; its role needs the REPLICATION attribute and SELECT on the tables. */
  hubUrl: string;
  schema: string;
  entities: Entities;
  slot: string;
  publication: string;
}

export const DEFAULT_SLOT = 'hubflow_cdc';
export const DEFAULT_PUBLICATION = 'hubflow_pub';

const NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** A slot or publication name: PostgreSQL folds and limits them, so only plain lower-case names are taken. */
export function cdcName(flag: string, value: string): string {
  if (!NAME.test(value)) throw new Error(`${flag}: '${value}' is not a lower-case SQL name (a-z, 0-9, _; at most 63 characters)`);
  return value;
}

/** The captured entities' tables, qualified. */
export function capturedTables(source: CdcSource): { entity: Entity; qualified: string }[] {
  return Object.values(source.entities).map((entity) => ({ entity, qualified: `${ident(source.schema)}.${ident(entity.table)}` }));
}
