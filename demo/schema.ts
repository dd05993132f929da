import { sql, type Kysely } from 'kysely';
import { columnOf, HUB_ENTITIES, type ColumnType, type Entities, type Entity } from '../hub/entities.ts';
import { ident, keyColumns, sequenceName, tableName } from '../hub/sql-names.ts';

/**
 * The demo hub's DDL, derived from the entity configuration so that the tables and the mapping
 * cannot drift apart. Tenant-scoped tables lead their primary key with the tenant column, which
 * is also the (tenant_id, key) index every per-tenant read uses.
 */

export const SQL_TYPES: Record<ColumnType, string> = {
  text: 'text',
  integer: 'integer',
  // Money: exact, two decimals, up to a trillion.
  numeric: 'numeric(14,2)',
  date: 'date',
  timestamptz: 'timestamptz',
  boolean: 'boolean',
};

/** Set on every table this module creates: `reset` drops only tables that carry it. */
export const DEMO_MARKER = 'hubflow demo hub';

interface TableDdl {
  table: string;
  create: string[];
  /** Run only when `create` made the table: an existing table (a real hub's) is never marked. */
  mark: string;
}

function tableDdl(schema: string, e: Entity): TableDdl {
  const name = tableName(schema, e);
  const lead = e.tenantColumn ? [e.tenantColumn] : [];
  // Ids compare byte by byte: faster to sort and look up than a linguistic collation, and
  // immune to the index corruption a libc collation update can cause.
  const ids = new Set([...e.key, ...e.indexes.flat()]);
  const columns = [
    ...lead.map((c) => `${ident(c)} text collate "C" not null`),
    ...Object.entries(e.columns).map(([field, c]) => {
      const collate = c.type === 'text' && ids.has(field) ? ' collate "C"' : '';
      return `${ident(c.column ?? field)} ${SQL_TYPES[c.type]}${collate}${c.nullable ? '' : ' not null'}`;
    }),
    `${ident(e.updatedAtColumn)} timestamptz not null default now()`,
    `primary key (${keyColumns(e).map(ident).join(', ')})`,
  ];
  const index = (fields: string[]) => {
    const cols = [...lead, ...fields];
    return `create index if not exists ${ident(`${e.table}_${cols.join('_')}`.slice(0, 63))} on ${name} (${cols.map(ident).join(', ')});`;
  };
  return {
    table: e.table,
    create: [
      `create table if not exists ${name} (\n  ${columns.join(',\n  ')}\n);`,
      // Incremental extracts read "changed since the watermark", per tenant.
      index([e.updatedAtColumn]),
      ...e.indexes.map((fields) => index(fields.map((f) => columnOf(e, f)))),
      ...(e.idPrefix ? [`create sequence if not exists ${sequenceName(schema, e)};`] : []),
    ],
    mark: `comment on table ${name} is '${DEMO_MARKER}';`,
  };
}

/** The DDL as one script, as the README shows it. */
export function hubDdl(schema = 'hub', entities: Entities = HUB_ENTITIES): string {
  const tables = Object.values(entities).map((e) => tableDdl(schema, e));
  return [`create schema if not exists ${ident(schema)};`, ...tables.flatMap((t) => [t.create[0]!, t.mark, ...t.create.slice(1)])].join('\n\n');
}

async function existingTables<DB>(db: Kysely<DB>, schema: string, tables: string[]): Promise<{ table: string; marker: string | null }[]> {
  const { rows } = await sql<{ table: string; marker: string | null }>`
    select c.relname as table, obj_description(c.oid, 'pg_class') as marker
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relkind in ('r', 'p') and c.relname = any(${tables})`.execute(db);
  return rows;
}

/** Runs the DDL on `db`, which may be inside a transaction; serialised across processes. */
export async function applyHubDdl<DB>(db: Kysely<DB>, schema: string, entities: Entities = HUB_ENTITIES): Promise<void> {
  // Two processes creating the same schema at once would race on `create schema if not exists`.
  await sql`select pg_advisory_xact_lock(hashtext('hubflow-hub-ddl'))`.execute(db);
  await sql.raw(`create schema if not exists ${ident(schema)}`).execute(db);
  const tables = Object.values(entities).map((e) => tableDdl(schema, e));
  const existing = new Set(
    (
      await existingTables(
        db,
        schema,
        tables.map((t) => t.table),
      )
    ).map((r) => r.table),
  );
  for (const t of tables) {
    for (const statement of t.create) await sql.raw(statement).execute(db);
    if (!existing.has(t.table)) await sql.raw(t.mark).execute(db);
  }
}

/** Creates the demo hub's schema, tables, indexes and id sequences; safe to repeat. */
export async function createHubSchema<DB>(db: Kysely<DB>, schema: string, entities: Entities = HUB_ENTITIES): Promise<void> {
  await db.transaction().execute((trx) => applyHubDdl(trx, schema, entities));
}

/** Throws when a configured table exists but was not created by the demo hub (a real hub's). */
export async function assertDemoTables<DB>(db: Kysely<DB>, schema: string, entities: Entities = HUB_ENTITIES): Promise<void> {
  const rows = await existingTables(
    db,
    schema,
    Object.values(entities).map((e) => e.table),
  );
  const foreign = rows.filter((r) => r.marker !== DEMO_MARKER).map((r) => `${schema}.${r.table}`);
  if (foreign.length)
    throw new Error(`refusing to write ${foreign.join(', ')}: not created as a demo hub (no '${DEMO_MARKER}' comment); the demo writes only its own tables`);
}

/**
 * Drops the configured tables and sequences, refusing when an existing table lacks the demo
 * marker: HUBFLOW_HUB_URL may point at a real hub, whose tables a reset must never touch.
 */
export async function dropDemoTables<DB>(db: Kysely<DB>, schema: string, entities: Entities = HUB_ENTITIES): Promise<void> {
  await assertDemoTables(db, schema, entities);
  for (const e of Object.values(entities)) {
    await sql.raw(`drop table if exists ${tableName(schema, e)}`).execute(db);
    if (e.idPrefix) await sql.raw(`drop sequence if exists ${sequenceName(schema, e)}`).execute(db);
  }
}
