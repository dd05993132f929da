import { columnOf, trackedFields, type ColumnType, type Entity, type FieldClass } from '../../hub/entities.ts';
import { GLOBAL_SCOPE } from '../../hub/tenant-id.ts';

/**
 * The shape of one entity as it travels: the staged snapshot file's columns (in order), and
 * the history tables built from them. Everything here derives from the entity configuration,
 * so a hub mapped with other names gets the same pipeline.
 */

export interface Field {
  /** hubflow's name: the warehouse column. */
  name: string;
  /** The hub's column. */
  column: string;
  type: ColumnType;
  class: FieldClass;
  role: 'tenant' | 'key' | 'tracked' | 'updated_at' | 'row_hash';
}

/** The reserved name of the tenant column in the warehouse, whatever the hub calls it. */
export const TENANT_FIELD = 'tenant_id';
export const UPDATED_FIELD = 'source_updated_at';
export const HASH_FIELD = 'row_hash';

/** A staged line's fields: tenant (tenant-scoped entities), key, tracked, hub change time, hash. */
export function snapshotFields(entity: Entity): Field[] {
  const column = (name: string, role: Field['role']): Field => {
    const c = entity.columns[name]!;
    return { name, column: columnOf(entity, name), type: c.type, class: c.class, role };
  };
  return [
    ...(entity.tenantColumn ? [{ name: TENANT_FIELD, column: entity.tenantColumn, type: 'text', class: 'operational', role: 'tenant' } as Field] : []),
    ...entity.key.map((k) => column(k, 'key')),
    ...trackedFields(entity).map((f) => column(f, 'tracked')),
    { name: UPDATED_FIELD, column: entity.updatedAtColumn, type: 'timestamptz', class: 'operational', role: 'updated_at' },
    { name: HASH_FIELD, column: HASH_FIELD, type: 'text', class: 'operational', role: 'row_hash' },
  ];
}

/** The scope columns of a history row: tenant first, then the key. */
export function identityFields(entity: Entity): Field[] {
  return snapshotFields(entity).filter((f) => f.role === 'tenant' || f.role === 'key');
}

export function tracked(entity: Entity): Field[] {
  return snapshotFields(entity).filter((f) => f.role === 'tracked');
}

/**
 * A scope is the unit of one load: one tenant of every tenant-scoped entity, or (tenant null)
 * the global reference data. Tables, paths and messages name the global scope GLOBAL_SCOPE.
 */
export type Scope = string | null;
export const ledgerTenant = (scope: Scope) => scope ?? GLOBAL_SCOPE;
export const scopeLabel = (scope: Scope) => scope ?? GLOBAL_SCOPE;
export const inScope = (entity: Entity, scope: Scope) => (scope === null) === (entity.tenantColumn === null);

/** The staged file's column names, in order: the staging table's columns. */
export function stagingColumnNames(entity: Entity): string[] {
  return snapshotFields(entity).map((f) => f.name);
}
