import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../core/pg.ts';
import { GLOBAL_SCOPE } from '../../hub/tenant-id.ts';
import { down, up } from '../../server/store/migrations/0010-global-scope.ts';
import { TEST_DATABASE_URL } from '../support.ts';

const schema = `global_scope_${process.pid}_${Date.now()}`;
const db = openPostgres<unknown>(TEST_DATABASE_URL, { poolSize: 1, searchPath: schema });

beforeAll(async () => {
  await sql`create schema ${sql.id(schema)}`.execute(db);
  // The reconciliations table's scope column, with the rows an older hubflow wrote.
  await sql`create table reconciliations (entity text not null, tenant_id text not null)`.execute(db);
  await sql`insert into reconciliations values ('workers', ''), ('workers', 'acme'), ('countries', '')`.execute(db);
});

afterAll(async () => {
  await sql`drop schema ${sql.id(schema)} cascade`.execute(db);
  await db.destroy();
});

const tenants = async () =>
  (await sql<{ entity: string; tenant_id: string }>`select entity, tenant_id from reconciliations order by 1, 2`.execute(db)).rows.map((r) => [
    r.entity,
    r.tenant_id,
  ]);

describe('migration 0010: one name for the global scope', () => {
  it("renames the global scope's reconciliations, leaving the tenants' as they are, and back", async () => {
    await up(db);
    expect(await tenants()).toEqual([
      ['countries', GLOBAL_SCOPE],
      ['workers', GLOBAL_SCOPE],
      ['workers', 'acme'],
    ]);
    await down(db);
    expect(await tenants()).toEqual([
      ['countries', ''],
      ['workers', ''],
      ['workers', 'acme'],
    ]);
  });
});
