import { sql, type Kysely } from 'kysely';

/**
 * Drops the indexes and primary keys of tables about to be bulk-loaded and returns what
 * recreates them. Building a btree once from sorted data is several times faster than
 * maintaining it row by row, above all for the (tenant, updated_at) indexes, whose inserts land
 * all over the tree. Run inside the loading transaction, so nobody sees the tables without them.
 */
export async function deferIndexes<DB>(db: Kysely<DB>, tables: string[]): Promise<() => Promise<void>> {
  const { rows: keys } = await sql<{ tbl: string; name: string; def: string }>`
    select conrelid::regclass::text as tbl, quote_ident(conname) as name, pg_get_constraintdef(oid) as def
    from pg_constraint where contype in ('p', 'u') and conrelid = any(${tables}::regclass[])
    order by conrelid, conname`.execute(db);
  const { rows: indexes } = await sql<{ name: string; def: string }>`
    select indexrelid::regclass::text as name, pg_get_indexdef(indexrelid) as def
    from pg_index i
    where indrelid = any(${tables}::regclass[])
      and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)
    order by indrelid, indexrelid::regclass::text`.execute(db);
  for (const k of keys) await sql.raw(`alter table ${k.tbl} drop constraint ${k.name}`).execute(db);
  for (const i of indexes) await sql.raw(`drop index ${i.name}`).execute(db);
  return async () => {
    // Sorts for the builds; local to the transaction.
    await sql`set local maintenance_work_mem = '256MB'`.execute(db);
    for (const k of keys) await sql.raw(`alter table ${k.tbl} add constraint ${k.name} ${k.def}`).execute(db);
    for (const i of indexes) await sql.raw(i.def).execute(db);
  };
}
