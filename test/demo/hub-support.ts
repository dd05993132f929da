import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { openHub, type HubDb } from '../../hub/db.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { keyColumns, tableName } from '../../hub/sql-names.ts';
import { TEST_DATABASE_URL } from '../support.ts';

/** A hub connection whose schemas are named per test file and dropped by `close()`. */
export function testHub(): { db: HubDb; schema: (label: string) => string; close: () => Promise<void> } {
  const db = openHub(TEST_DATABASE_URL);
  const prefix = `hub_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const made: string[] = [];
  return {
    db,
    schema(label) {
      const name = `${prefix}_${label}`;
      made.push(name);
      return name;
    },
    async close() {
      for (const s of made) await sql`drop schema if exists ${sql.id(s)} cascade`.execute(db);
      await db.destroy();
    },
  };
}

/** md5 of every entity's table, rows ordered by key: equal digests mean byte-identical contents. */
export async function tableDigests(db: HubDb, schema: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of Object.values(HUB_ENTITIES)) {
    const { rows } = await sql<{ md5: string }>`
      select md5(coalesce(string_agg(t::text, E'\\n' order by ${sql.raw(keyColumns(e).join(', '))}), '')) as md5
      from ${sql.raw(tableName(schema, e))} t`.execute(db);
    out[e.name] = rows[0]!.md5;
  }
  return out;
}
