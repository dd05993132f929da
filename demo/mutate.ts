import { sql, type Kysely } from 'kysely';
import { bankAccount } from './bank.ts';
import { deleteFromArrays, insertFromArrays, rowsToArrays, updateFromArrays, type ArrayColumn } from './bulk.ts';
import { DAY_SECONDS, EPOCH_DAY, isoDate, isoTimestamp } from './calendar.ts';
import { EMPLOYING, type EmployingCountry } from './countries.ts';
import { columnOf, HUB_ENTITIES, type Entities, type Entity } from '../hub/entities.ts';
import { contractRow, id, STREAM, workerCore, workerRow, type OrgPlan, type Row } from './generate.ts';
import { emailFor, personName } from './names.ts';
import { address } from './places.ts';
import { hashString, int, pick, rngFor, weighted, type Rng } from './prng.ts';
import { assertDemoTables } from './schema.ts';
import { ident, sequenceName, tableName } from '../hub/sql-names.ts';

export const UPDATE_KINDS = ['address', 'email', 'name', 'bank', 'salary'] as const;
export type UpdateKind = (typeof UPDATE_KINDS)[number];

export interface MutateOptions {
  seed: number;
  /** Share of the workers changed in the day, hires included: 0.01 = 1%. */
  rate: number;
  /** The day changed (its UTC date); default the epoch plus `seed` days, so runs are repeatable. */
  at?: Date;
  entities?: Entities;
}

export interface MutateResult {
  day: string;
  workersBefore: number;
  updated: number;
  hired: number;
  terminated: number;
  deleted: number;
  byField: Record<UpdateKind, number>;
  seconds: number;
}

// How a day's changes split; deletes (erasure requests, merged duplicates) are rare.
const SHARE = { hired: 0.15, terminated: 0.1, deleted: 0.03 };
const UPDATE_WEIGHTS: [UpdateKind, number][] = [
  ['address', 35],
  ['email', 20],
  ['salary', 25],
  ['name', 8],
  ['bank', 12],
];
const UPDATE = 0;
const HIRE = 1;

interface Target {
  tenant: string;
  id: string;
  status: string;
  country: string;
  given: string;
  family: string;
  started: boolean;
}

function split(total: number): { hired: number; terminated: number; deleted: number; updated: number } {
  const part = (share: number) => (total >= 4 ? Math.max(1, Math.round(total * share)) : 0);
  const hired = part(SHARE.hired);
  const terminated = part(SHARE.terminated);
  const deleted = part(SHARE.deleted);
  return { hired, terminated, deleted, updated: total - hired - terminated - deleted };
}

/**
 * One day of changes to the demo hub: updates, hires, terminations and hard deletes touching
 * about `rate` of the workers, each stamped with a time inside the day. Which workers change
 * comes from an md5 ordering keyed by seed and day, and what they change to from streams keyed
 * by the worker, so the same hub, seed and day always give the same changes.
 */
export async function mutateHub<DB>(db: Kysely<DB>, schema: string, options: MutateOptions): Promise<MutateResult> {
  const { seed, rate } = options;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed: a non-negative whole number, not ${seed}`);
  if (!(rate >= 0 && rate <= 1)) throw new Error(`rate: a share from 0 to 1 (0.01 = 1%), not ${rate}`);
  const entities = options.entities ?? HUB_ENTITIES;
  const e = (name: string): Entity => entities[name] ?? missing(name);
  const [W, K, P, O] = [e('workers'), e('contracts'), e('payroll_results'), e('orgs')];
  if (!W.idPrefix || !K.idPrefix) throw new Error('mutateHub needs id sequences on workers and contracts (idPrefix): it writes the demo hub only');
  const day = options.at ? Math.floor(options.at.getTime() / (DAY_SECONDS * 1000)) : EPOCH_DAY + seed;
  const started = performance.now();
  const at = (rng: Rng) => isoTimestamp(day * DAY_SECONDS + int(rng, 0, DAY_SECONDS - 1));

  return db.transaction().execute(async (trx) => {
    await assertDemoTables(trx, schema, entities);
    const w = (field: string) => ident(columnOf(W, field));
    const workers = tableName(schema, W);
    const { rows: counted } = await sql<{ n: number }>`select count(*)::int as n from ${sql.raw(workers)}`.execute(trx);
    const workersBefore = counted[0]?.n ?? 0;
    const plan = split(Math.round(rate * workersBefore));
    const wanted = plan.terminated + plan.deleted + plan.updated;

    const tenant = ident(W.tenantColumn!);
    // A margin, because only a worker who has started and is not yet terminated can be terminated.
    const { rows: candidates } = await sql<Target>`
      select ${sql.raw(`${tenant} as tenant, ${w('worker_id')} as id, ${w('status')} as status, ${w('country')} as country, ${w('given_name')} as given, ${w('family_name')} as family`)},
        ${sql.raw(w('hire_date'))} <= ${isoDate(day)}::date as started
      from ${sql.raw(workers)}
      order by md5(${`${seed}:${day}:`} || ${sql.raw(`${tenant} || ':' || ${w('worker_id')}`)}), ${sql.raw(`${tenant}, ${w('worker_id')}`)}
      limit ${wanted + Math.ceil(wanted / 4) + 8}`.execute(trx);

    const terminations: Target[] = [];
    const deletions: Target[] = [];
    const updates: Target[] = [];
    for (const c of candidates) {
      if (terminations.length < plan.terminated && c.started && c.status !== 'terminated') terminations.push(c);
      else if (deletions.length < plan.deleted) deletions.push(c);
      else if (updates.length < plan.updated) updates.push(c);
    }

    // Keyed by the worker, not by position: a worker's change does not depend on who else changed.
    const rngOf = (t: Target) => rngFor(seed, STREAM.mutate, day, UPDATE, hashString(`${t.tenant}:${t.id}`));
    const byField = await applyUpdates(trx, schema, W, K, updates, rngOf, at);
    const terminated = await terminate(trx, schema, W, K, terminations, day, rngOf, at);
    let deleted = 0;
    if (deletions.length) {
      for (const entity of [P, K]) await deleteFromArrays(trx, tableName(schema, entity), byWorker(entity, deletions));
      deleted = await deleteFromArrays(trx, workers, byWorker(W, deletions));
    }
    const hired = await hire(trx, schema, W, K, O, plan.hired, (k) => rngFor(seed, STREAM.mutate, day, HIRE, k), day, at);

    return {
      day: isoDate(day),
      workersBefore,
      updated: updates.length,
      hired,
      terminated,
      deleted,
      byField,
      seconds: (performance.now() - started) / 1000,
    };
  });
}

function missing(name: string): never {
  throw new Error(`the entity configuration has no '${name}', which the demo hub needs`);
}

/** Match columns (tenant, worker id) of an entity for a set of workers. */
function byWorker(entity: Entity, targets: Target[]): ArrayColumn[] {
  return [
    { column: entity.tenantColumn!, type: 'text', values: targets.map((t) => t.tenant) },
    { column: columnOf(entity, 'worker_id'), type: 'text', values: targets.map((t) => t.id) },
  ];
}

async function applyUpdates<DB>(
  db: Kysely<DB>,
  schema: string,
  W: Entity,
  K: Entity,
  targets: Target[],
  rngOf: (t: Target) => Rng,
  at: (rng: Rng) => string,
): Promise<Record<UpdateKind, number>> {
  const groups = Object.fromEntries(UPDATE_KINDS.map((k) => [k, [] as { t: Target; values: Record<string, unknown> }[]])) as Record<
    UpdateKind,
    { t: Target; values: Record<string, unknown> }[]
  >;
  for (const t of targets) {
    const rng = rngOf(t);
    const kind = weighted(rng, UPDATE_WEIGHTS);
    const country = (EMPLOYING as readonly string[]).includes(t.country) ? (t.country as EmployingCountry) : 'GB';
    const values: Record<string, unknown> = { updated_at: at(rng) };
    if (kind === 'address') {
      const a = address(rng, country);
      Object.assign(values, { address_line1: a.line1, address_line2: a.line2, city: a.city, region: a.region, postcode: a.postcode });
    } else if (kind === 'email') values.email = emailFor(rng, t.given, t.family);
    else if (kind === 'name') values.family_name = personName(rng, country).family.text;
    else if (kind === 'bank') {
      const b = bankAccount(rng, country);
      Object.assign(values, { bank_account: b.account, bank_code: b.code });
    } else values.factor = 1 + int(rng, 2, 9) / 100;
    groups[kind].push({ t, values });
  }
  for (const kind of UPDATE_KINDS) {
    const group = groups[kind];
    if (!group.length) continue;
    const entity = kind === 'salary' ? K : W;
    const fields = Object.keys(group[0]!.values);
    const set = fields.map((f) => {
      const values = group.map((g) => g.values[f] ?? null);
      if (f === 'updated_at') return { column: entity.updatedAtColumn, type: 'timestamptz', values };
      if (f === 'factor') {
        const salary = ident(columnOf(K, 'salary'));
        // A raise, rounded to the hundred as salaries are.
        return { column: columnOf(K, 'salary'), type: 'numeric', values, expression: (t: string, u: string) => `round(${t}.${salary} * ${u} / 100) * 100` };
      }
      return { column: columnOf(entity, f), type: 'text', values };
    });
    await updateFromArrays(
      db,
      tableName(schema, entity),
      byWorker(
        entity,
        group.map((g) => g.t),
      ),
      set,
    );
  }
  return Object.fromEntries(UPDATE_KINDS.map((k) => [k, groups[k].length])) as Record<UpdateKind, number>;
}

async function terminate<DB>(
  db: Kysely<DB>,
  schema: string,
  W: Entity,
  K: Entity,
  targets: Target[],
  day: number,
  rngOf: (t: Target) => Rng,
  at: (rng: Rng) => string,
): Promise<number> {
  if (!targets.length) return 0;
  const stamps = targets.map((t) => at(rngOf(t)));
  const date = targets.map(() => isoDate(day));
  const n = await updateFromArrays(db, tableName(schema, W), byWorker(W, targets), [
    { column: columnOf(W, 'status'), type: 'text', values: targets.map(() => 'terminated') },
    { column: columnOf(W, 'termination_date'), type: 'date', values: date },
    { column: W.updatedAtColumn, type: 'timestamptz', values: stamps },
  ]);
  await updateFromArrays(db, tableName(schema, K), byWorker(K, targets), [
    { column: columnOf(K, 'end_date'), type: 'date', values: date },
    { column: K.updatedAtColumn, type: 'timestamptz', values: stamps },
  ]);
  return n;
}

async function hire<DB>(
  db: Kysely<DB>,
  schema: string,
  W: Entity,
  K: Entity,
  O: Entity,
  count: number,
  rngOf: (k: number) => Rng,
  day: number,
  at: (rng: Rng) => string,
): Promise<number> {
  if (!count) return 0;
  const o = (field: string) => ident(columnOf(O, field));
  const { rows } = await sql<{ tenant: string; org: string; country: string }>`
    select ${sql.raw(`${ident(O.tenantColumn!)} as tenant, ${o('org_id')} as org, ${o('country')} as country`)}
    from ${sql.raw(tableName(schema, O))} order by 1, 2`.execute(db);
  const orgs: OrgPlan[] = rows
    .filter((r) => (EMPLOYING as readonly string[]).includes(r.country))
    .map((r) => ({ orgId: r.org, tenantId: r.tenant, country: r.country as EmployingCountry, weight: 1 }));
  if (!orgs.length) return 0;
  const next = async (entity: Entity) => {
    const { rows: ids } = await sql<{
      v: number;
    }>`select nextval(${sequenceName(schema, entity)}::regclass)::int as v from generate_series(1, ${count})`.execute(db);
    return ids.map((r) => r.v).sort((a, b) => a - b);
  };
  const [workerNumbers, contractNumbers] = [await next(W), await next(K)];
  const workers: Row[] = [];
  const contracts: Row[] = [];
  for (let k = 0; k < count; k++) {
    const rng = rngOf(k);
    // Hired today, starting in one to six weeks, as onboarding runs ahead of the start date.
    const core = workerCore(rng, [pick(rng, orgs)], day + int(rng, 7, 45), at(rng));
    const workerId = id(W.idPrefix!, workerNumbers[k]!);
    workers.push(workerRow(rng, core, workerId));
    contracts.push(contractRow(rng, core, id(K.idPrefix!, contractNumbers[k]!), workerId));
  }
  const n = await insertFromArrays(db, tableName(schema, W), rowsToArrays(W, workers));
  await insertFromArrays(db, tableName(schema, K), rowsToArrays(K, contracts));
  return n;
}
