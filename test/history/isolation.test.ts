import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { applyScope, utcDayInterval } from '../../tasks/history/apply.ts';
import { extractScope, type Reject } from '../../tasks/history/extract.ts';
import { historyHarness, type HistoryHarness } from './support.ts';

/** Tenant A's extract and load never read or write tenant B's rows. */

let h: HistoryHarness;
let tenants: string[];
let run = 100;

const wh = (table: string) => sql.raw(`${h.whSchema}.${table}`);

async function load(tenant: string, day: string) {
  const rejects: Reject[] = [];
  const extract = await extractScope({
    hub: h.rt.connections.hub(),
    schema: h.hubSchema,
    entities: HUB_ENTITIES,
    scope: tenant,
    dir: path.join(h.staging, `${tenant}-${day}`),
    onRejects: async (r) => void rejects.push(...r),
  });
  return { extract, rejects };
}

async function apply(extract: Awaited<ReturnType<typeof load>>['extract'], day: string) {
  return applyScope({
    warehouse: await h.rt.connections.warehouse(),
    entities: HUB_ENTITIES,
    extract,
    runId: ++run,
    interval: utcDayInterval(day),
    attempt: `iso-${run}`,
  });
}

/** Every version row of a tenant with its physical identity: a write would change xmin or ctid. */
async function fingerprint(tenant: string): Promise<string[]> {
  const parts = await Promise.all(
    Object.values(HUB_ENTITIES)
      .filter((e) => e.tenantColumn)
      .map(async (e) =>
        (
          await sql<{
            f: string;
          }>`select concat(${e.name}::text, ctid::text, xmin::text, row_hash) as f from ${wh(`${e.name}_history`)} where tenant_id = ${tenant} order by 1`.execute(
            h.rt.db,
          )
        ).rows.map((r) => r.f),
      ),
  );
  return parts.flat();
}

beforeAll(async () => {
  h = await historyHarness({ tenants: 2, workers: 400, seed: 9, worker: false });
  tenants = (await sql<{ t: string }>`select tenant_id as t from ${sql.raw(`${h.hubSchema}.clients`)} order by 1`.execute(h.rt.db)).rows.map((r) => r.t);
  for (const t of tenants) await apply((await load(t, '2026-03-01')).extract, '2026-03-01');
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('tenant isolation', () => {
  it("stages only the tenant's own rows", async () => {
    const [a] = tenants;
    const { extract } = await load(a!, 'read');
    for (const e of extract.entities) {
      const lines = gunzipSync(readFileSync(e.file!)).toString('utf8').trimEnd().split('\n');
      expect(lines).toHaveLength(e.staged);
      expect(
        lines.every((l) => l.startsWith(`${a}\t`)),
        e.entity,
      ).toBe(true);
    }
  });

  it("loads tenant A's changes without touching a row of tenant B, whose own changes wait for B's load", async () => {
    const [a, b] = tenants as [string, string];
    const hub = h.rt.connections.hub();
    for (const t of [a, b])
      await sql`update ${sql.raw(`${h.hubSchema}.workers`)} set email = 'changed@example.com', updated_at = now() where tenant_id = ${t} and worker_id = (select min(worker_id) from ${sql.raw(`${h.hubSchema}.workers`)} where tenant_id = ${t})`.execute(
        hub,
      );
    const before = await fingerprint(b);
    const loads = await apply((await load(a, '2026-03-02')).extract, '2026-03-02');
    expect(loads.find((l) => l.entity === 'workers')).toMatchObject({ status: 'loaded', updated: 1 });
    expect(await fingerprint(b)).toEqual(before);
    const bChanged = await sql`select 1 from ${wh('workers_current')} where tenant_id = ${b} and email = 'changed@example.com'`.execute(h.rt.db);
    expect(bChanged.rows).toHaveLength(0);
  });

  it("refuses a staged file that carries another tenant's row, and writes nothing", async () => {
    const [a, b] = tenants as [string, string];
    const { extract } = await load(a, '2026-03-03');
    const workers = extract.entities.find((e) => e.entity === 'workers')!;
    const lines = gunzipSync(readFileSync(workers.file!)).toString('utf8').trimEnd().split('\n');
    // One row relabelled as tenant B's: what a bug in a source query would produce.
    lines[0] = `${b}${lines[0]!.slice(a.length)}`;
    writeFileSync(workers.file!, gzipSync(`${lines.join('\n')}\n`));
    const beforeA = await fingerprint(a);
    const beforeB = await fingerprint(b);
    await expect(apply(extract, '2026-03-03')).rejects.toThrow(`1 staged rows of tenant '${b}' in the load of tenant '${a}'`);
    expect(await fingerprint(a)).toEqual(beforeA);
    expect(await fingerprint(b)).toEqual(beforeB);
  });
});
