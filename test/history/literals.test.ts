import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, poolOf } from '../../core/pg.ts';
import { openHub, type HubDb } from '../../hub/db.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { hubColumns } from '../../hub/snapshot.ts';
import { seedHub } from '../../demo/seed.ts';
import { approveDeletes } from '../../tasks/history/apply.ts';
import { plan } from '../../tasks/history/scanner.ts';
import { openPostgresWarehouse } from '../../warehouse/postgres/dialect.ts';
import { postgresDialect } from '../../warehouse/postgres/sql.ts';
import { TEST_DATABASE_URL } from '../support.ts';

/**
 * A value in a literal stays a value even where the server reads backslashes as escapes
 * (standard_conforming_strings = off): hubflow's sessions turn the setting on whatever the role
 * or database says, and the literals hubflow writes are safe either way.
 */

const tag = randomUUID().replaceAll('-', '').slice(0, 10);
const role = `hf_scs_${tag}`;
const hubSchema = `hub_scs_${tag}`;
const whSchema = `wh_scs_${tag}`;
/** Under standard_conforming_strings = off, quote-doubling alone makes `\'` end the literal and the rest SQL. */
const HOSTILE = `\\' or true; create table ${whSchema}.pwned (x int); --`;

let admin: HubDb;

function urlAs(user: string): string {
  const url = new URL(TEST_DATABASE_URL);
  url.username = user;
  url.password = '';
  return url.toString();
}

beforeAll(async () => {
  admin = openHub(TEST_DATABASE_URL);
  await sql`create role ${sql.id(role)} login`.execute(admin);
  // The server side says "backslashes escape" for every session of this role.
  await sql`alter role ${sql.id(role)} set standard_conforming_strings = off`.execute(admin);
  await sql`create schema ${sql.id(whSchema)} authorization ${sql.id(role)}`.execute(admin);
  // `create schema if not exists` asks for the database's CREATE even when the schema is there.
  const { rows } = await sql<{ d: string }>`select current_database() as d`.execute(admin);
  await sql`grant create on database ${sql.id(rows[0]!.d)} to ${sql.id(role)}`.execute(admin);
  await seedHub(admin, hubSchema, { tenants: 2, workers: 40, seed: 3 });
});

afterAll(async () => {
  await sql`drop schema if exists ${sql.id(hubSchema)} cascade`.execute(admin);
  await sql`drop schema if exists ${sql.id(whSchema)} cascade`.execute(admin);
  await sql`drop owned by ${sql.id(role)}`.execute(admin);
  await sql`drop role if exists ${sql.id(role)}`.execute(admin);
  await admin.destroy();
});

describe('standard_conforming_strings', () => {
  it('is on in every hubflow session, even for a role whose default turns it off', async () => {
    const raw = new pg.Client({ connectionString: urlAs(role) });
    await raw.connect();
    const { rows: plain } = await raw.query<{ standard_conforming_strings: string }>('show standard_conforming_strings');
    await raw.end();
    expect(plain[0]!.standard_conforming_strings).toBe('off');

    const db = openPostgres(urlAs(role), { poolSize: 1 });
    const { rows } = await sql<{ standard_conforming_strings: string }>`show standard_conforming_strings`.execute(db);
    await db.destroy();
    expect(rows[0]!.standard_conforming_strings).toBe('on');
  });

  it("keeps an operator's hostile --reason and tenant as data: stored verbatim, no statement run", async () => {
    const wh = openPostgresWarehouse(urlAs(role), whSchema);
    try {
      await approveDeletes(wh, HUB_ENTITIES, { entity: '*', tenant: HOSTILE, logicalDate: '2026-01-05', approvedBy: 'ops', reason: HOSTILE });
    } finally {
      await wh.close();
    }
    const { rows } = await sql<{ tenant_id: string; reason: string }>`select tenant_id, reason from ${sql.id(whSchema)}.delete_approvals`.execute(admin);
    expect(rows).toEqual([{ tenant_id: HOSTILE, reason: HOSTILE }]);
    const { rows: pwned } = await sql<{ t: string | null }>`select to_regclass(${`${whSchema}.pwned`}) as t`.execute(admin);
    expect(pwned[0]!.t).toBeNull();
  });
});

describe('literals hubflow writes', () => {
  it('read back as the same value on a session with standard_conforming_strings off', async () => {
    const client = await poolOf(admin).connect();
    try {
      await client.query('set standard_conforming_strings = off');
      for (const value of [HOSTILE, "it's", 'C:\\temp\\', '\\', "\\'"]) {
        const { rows } = await client.query<{ v: string }>(`select ${postgresDialect.text(value)} as v`);
        expect(rows[0]!.v).toBe(value);
      }
    } finally {
      await client.query('reset standard_conforming_strings');
      client.release();
    }
  });

  it("stage no other tenant's rows in the extract's COPY for a hostile tenant id, on such a session", async () => {
    const workers = HUB_ENTITIES.workers!;
    const client = await poolOf(admin).connect();
    try {
      await client.query('set standard_conforming_strings = off');
      const p = plan(workers, await hubColumns(client, hubSchema, workers), hubSchema, HOSTILE);
      let lines = 0;
      await pipeline(
        client.query(copyTo(`copy (${p.select}) to stdout`)),
        new Writable({
          write(chunk: Buffer, _e, done) {
            lines += chunk.toString().split('\n').length - 1;
            done();
          },
        }),
      );
      expect(lines).toBe(0);
    } finally {
      await client.query('reset standard_conforming_strings');
      client.release();
    }
  });
});
