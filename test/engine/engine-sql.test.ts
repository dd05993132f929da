import { randomUUID } from 'node:crypto';
import { Migrator, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, migrateStore, openStore, type Store } from '../../server/store/db.ts';
import { engineFunctions } from '../../server/store/engine-sql.ts';
import { TEST_DATABASE_URL } from '../support.ts';

const opened: { db: Store; schema: string }[] = [];
afterEach(async () => {
  for (const { db, schema } of opened.splice(0)) {
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(db);
    await db.destroy();
  }
});

async function freshStore(): Promise<{ db: Store; schema: string }> {
  const schema = `t_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const db = openStore(TEST_DATABASE_URL, schema, 2);
  opened.push({ db, schema });
  await sql`create schema ${sql.id(schema)}`.execute(db);
  return { db, schema };
}

/** The engine functions as PostgreSQL holds them, whitespace folded (the files are indented differently). */
async function definitions(db: Store, schema: string): Promise<Record<string, string>> {
  const { rows } = await sql<{ name: string; def: string }>`
    select p.proname as name, pg_get_functiondef(p.oid) as def from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = ${schema} and p.proname like 'hubflow\\_%' order by 1`.execute(db);
  return Object.fromEntries(rows.map((r) => [r.name, r.def.replace(/\s+/g, ' ')]));
}

describe('engine SQL files', () => {
  it("give a store migrated before the files existed the files' text", async () => {
    const { db, schema } = await freshStore();
    const migrator = new Migrator({ db, migrationTableSchema: schema, provider: { getMigrations: async () => MIGRATIONS } });
    const { error } = await migrator.migrateTo('0008-reject-rule');
    expect(error).toBeUndefined();
    expect(Object.keys(await definitions(db, schema))).toEqual(['hubflow_complete_tasks', 'hubflow_start_pooled', 'hubflow_start_tasks']);
    await migrateStore(db, schema);
    const fresh = await freshStore();
    await migrateStore(fresh.db, fresh.schema);
    const unqualified = (defs: Record<string, string>, name: string) =>
      Object.fromEntries(Object.entries(defs).map(([k, v]) => [k, v.replaceAll(`${name}.`, '')]));
    expect(unqualified(await definitions(db, schema), schema)).toEqual(unqualified(await definitions(fresh.db, fresh.schema), fresh.schema));
  });

  it('are applied again by every migration run', async () => {
    const { db, schema } = await freshStore();
    await migrateStore(db, schema);
    await sql`create or replace function hubflow_start_pooled(p_id bigint, p_generation int, p_worker text)
      returns table (id bigint, run_id bigint, task_id text, map_index int, try_number int, max_tries int, map_item jsonb,
                     attempt_id bigint, dag_id text, logical_date timestamptz, interval_start timestamptz,
                     interval_end timestamptz, conf jsonb)
      language sql as $$ select * from hubflow_start_tasks(array[p_id], array[p_generation], p_worker) $$`.execute(db);
    await migrateStore(db, schema);
    const defs = await definitions(db, schema);
    expect(defs.hubflow_start_pooled).toContain('resource_pools');
  });

  it('each open with their contract', () => {
    for (const text of engineFunctions()) {
      const header = text.slice(0, text.indexOf('create or replace function'));
      for (const part of ['-- Inputs', '-- Outputs', '-- Locks', '-- Why']) expect(header).toContain(part);
    }
  });
});
