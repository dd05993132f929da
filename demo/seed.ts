import { sql, type Kysely } from 'kysely';
import { copyRows } from './copy.ts';
import { deferIndexes } from './deferred-indexes.ts';
import { HUB_ENTITIES, type Entities, type Entity } from '../hub/entities.ts';
import { kyselyOnClient, poolOf } from '../core/pg.ts';
import type { HubTables } from '../hub/db.ts';
import { contractRow, id, payrollRows, planTenants, referenceRows, STREAM, workerCore, workerRow, type Row, type TenantPlan } from './generate.ts';
import { rngFor } from './prng.ts';
import { applyHubDdl, assertDemoTables, dropDemoTables } from './schema.ts';
import { sequenceName, tableName } from '../hub/sql-names.ts';

export interface SeedOptions {
  tenants: number;
  /** Workers in total, shared unevenly among the tenants. */
  workers: number;
  seed: number;
  /** Drop the demo tables first (only tables the demo created); otherwise they must be empty. */
  reset?: boolean;
  entities?: Entities;
}

/** The hub `hubflow demo` seeds: employers in every filing country (GB, US, CA) among others. */
export const DEMO_HUB: SeedOptions = { tenants: 3, workers: 3_000, seed: 1 };

export interface SeedResult {
  rows: Record<string, number>;
  seconds: number;
}

/** Every worker of every tenant, in global order. */
function* eachWorker(plans: TenantPlan[]): Generator<{ plan: TenantPlan; i: number }> {
  for (const plan of plans) for (let j = 0; j < plan.workers; j++) yield { plan, i: plan.firstWorker + j };
}

/**
 * Fills the demo hub in `schema` with a deterministic data set: the same options give
 * byte-identical tables. Each table is one COPY, generated as PostgreSQL consumes it, so memory
 * stays flat at any size; all of it is one transaction, so a failed seed leaves nothing behind.
 * `db` must come from openHub (COPY needs its pg pool).
 */
export async function seedHub<DB>(db: Kysely<DB>, schema: string, options: SeedOptions): Promise<SeedResult> {
  const { tenants, workers, seed } = options;
  if (!Number.isSafeInteger(tenants) || tenants < 1) throw new Error(`tenants: a whole number of at least 1, not ${tenants}`);
  if (!Number.isSafeInteger(workers) || workers < 0 || workers > 99_999_999) throw new Error(`workers: a whole number from 0 to 99,999,999, not ${workers}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed: a non-negative whole number, not ${seed}`);
  const entities = options.entities ?? HUB_ENTITIES;
  const e = (name: string): Entity => entities[name] ?? missing(name);
  const started = performance.now();
  const rows: Record<string, number> = {};
  const client = await poolOf(db).connect();
  const trx = kyselyOnClient<HubTables>(client);
  try {
    await client.query('begin');
    if (options.reset) await dropDemoTables(trx, schema, entities);
    else await assertDemoTables(trx, schema, entities);
    await applyHubDdl(trx, schema, entities);
    await assertEmpty(trx, schema, entities);
    // Emptied within this transaction, so COPY may write the rows frozen.
    const tables = Object.values(entities).map((x) => tableName(schema, x));
    await sql.raw(`truncate ${tables.join(', ')}`).execute(trx);
    const restoreIndexes = await deferIndexes(trx, tables);

    const plans = planTenants(seed, tenants, workers);
    const reference = referenceRows();
    const core = (plan: TenantPlan, i: number) => workerCore(rngFor(seed, STREAM.core, i), plan.orgs);
    const copy = async (name: string, source: Iterable<Row>) => (rows[name] = await copyRows(client, schema, e(name), source, true));

    await copy('countries', reference.countries);
    await copy('currencies', reference.currencies);
    await copy(
      'clients',
      plans.map((p) => p.client),
    );
    await copy(
      'orgs',
      plans.flatMap((p) => p.orgRows),
    );
    await copy(
      'workers',
      (function* () {
        for (const { plan, i } of eachWorker(plans)) {
          // The first workers of every seed carry the edge cases, so even a tiny hub has them.
          yield workerRow(rngFor(seed, STREAM.person, i), core(plan, i), id('W', i + 1), { longAddress: i === 0, nonLatinName: i === 1, noEmail: i === 2 });
        }
      })(),
    );
    await copy(
      'contracts',
      (function* () {
        for (const { plan, i } of eachWorker(plans)) yield contractRow(rngFor(seed, STREAM.contract, i), core(plan, i), id('K', i + 1), id('W', i + 1));
      })(),
    );
    await copy(
      'payroll_results',
      (function* () {
        for (const { plan, i } of eachWorker(plans)) yield* payrollRows(rngFor(seed, STREAM.payroll, i), core(plan, i), id('K', i + 1), id('W', i + 1));
      })(),
    );

    await restoreIndexes();

    // Ids the demo issued so far; mutateHub's hires continue from here and never reuse one.
    const issued: Record<string, number> = { clients: tenants, orgs: rows.orgs!, workers, contracts: workers };
    for (const [name, n] of Object.entries(issued)) {
      const entity = entities[name];
      if (entity?.idPrefix) await sql`select setval(${sequenceName(schema, entity)}::regclass, ${Math.max(n, 1)}, ${n > 0})`.execute(trx);
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  // Fresh statistics, so the first extract does not plan against an empty table.
  for (const entity of Object.values(entities)) await sql.raw(`analyze ${tableName(schema, entity)}`).execute(db);
  return { rows, seconds: (performance.now() - started) / 1000 };
}

function missing(name: string): never {
  throw new Error(`the entity configuration has no '${name}', which the demo hub needs`);
}

async function assertEmpty<DB>(db: Kysely<DB>, schema: string, entities: Entities): Promise<void> {
  for (const entity of Object.values(entities)) {
    const { rows } = await sql<{ found: boolean }>`select exists (select 1 from ${sql.raw(tableName(schema, entity))}) as found`.execute(db);
    if (rows[0]?.found) throw new Error(`${schema}.${entity.table} already has rows: pass reset (--reset) to replace the demo hub`);
  }
}
