import { sql } from 'kysely';
import type { Entity } from '../../hub/entities.ts';
import { int, pick, type Rng } from '../../demo/prng.ts';
import { tenantIdProblem } from '../../hub/tenant-id.ts';
import { snapshotFields, type Field } from '../../tasks/history/layout.ts';
import type { HistoryHarness } from './support.ts';

/**
 * The model behind property.test.ts: the record contract checked on its own terms, and the
 * day's corruption of a hub, each change remembered so a later day may repair it.
 */

/** The harness's own hub schema, for raw SQL. */
export const hubTable = (h: HistoryHarness, t: string) => sql.raw(`${h.hubSchema}.${t}`);
export const hubOf = (h: HistoryHarness) => h.rt.connections.hub();

// ---------------------------------------------------------------------------------------------
// The contract, checked here on its own terms (not with the extract's code).

export interface HubRow {
  entity: string;
  tenant: string | null;
  key: string;
  /** Identity and tracked values joined as the as-of helper joins them. */
  text: string;
  violations: { field: string; rule: string }[];
}

const contractFields = (e: Entity): Field[] => snapshotFields(e).filter((f) => f.role !== 'updated_at' && f.role !== 'row_hash');

export function isCalendarDate(v: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  return days !== undefined && d >= 1 && d <= days;
}

/** Whether a value (as the hub's text) is of the contract's type; types never drifted here are not checked. */
function ofType(type: Field['type'], v: string): boolean {
  if (type === 'date') return isCalendarDate(v);
  if (type === 'integer') return /^-?\d+$/.test(v) && BigInt(v) <= 2_147_483_647n && BigInt(v) >= -2_147_483_648n;
  // numeric(14,2): at most 12 digits before the point and 2 after.
  if (type === 'numeric') return /^-?\d{1,12}(\.\d{1,2})?$/.test(v);
  if (type === 'boolean') return v === 'true' || v === 'false';
  return true;
}

function violationsOf(e: Entity, fields: Field[], values: (string | null)[]): HubRow['violations'] {
  const out: HubRow['violations'] = [];
  fields.forEach((f, i) => {
    const v = values[i] ?? null;
    if (f.role === 'tenant') {
      if (tenantIdProblem(v)) out.push({ field: f.name, rule: 'tenant' });
      return;
    }
    const c = e.columns[f.name]!;
    if (v === null) {
      if (f.role === 'key') out.push({ field: f.name, rule: 'key' });
      else if (!c.nullable) out.push({ field: f.name, rule: 'not_null' });
      return;
    }
    if (!ofType(f.type, v)) out.push({ field: f.name, rule: 'type' });
    if (c.maxLength !== undefined && [...v].length > c.maxLength) out.push({ field: f.name, rule: 'max_length' });
    if (c.values && !c.values.includes(v)) out.push({ field: f.name, rule: 'enum' });
  });
  return out;
}

export async function readHub(h: HistoryHarness, e: Entity): Promise<HubRow[]> {
  const fields = contractFields(e);
  const cols = fields.map((f) => `t.${sql.id(f.column).compile(h.rt.db).sql}::text`).join(', ');
  const { rows } = await sql<{ v: (string | null)[] }>`select array[${sql.raw(cols)}] as v from ${hubTable(h, e.table)} t`.execute(hubOf(h));
  const keyAt = fields.flatMap((f, i) => (f.role === 'key' ? [i] : []));
  return rows.map(({ v }) => ({
    entity: e.name,
    tenant: e.tenantColumn ? (v[0] ?? null) : '',
    key: keyAt.map((i) => v[i] ?? '').join('/'),
    text: v.map((x) => x ?? '∅').join('|'),
    violations: violationsOf(e, fields, v),
  }));
}

// ---------------------------------------------------------------------------------------------
// Corruption: each change remembered, so a later day may repair it.

interface Damage {
  table: string;
  /** The row's identity as it is after the damage. */
  where: Record<string, string | null>;
  column: string;
  original: string | null;
}

const NINO_BAD = ['CR123456A', 'QA123456B', 'AO123456C', 'BG123456A', 'AB123456E', 'PY654321D', 'AB12345'];
const SSN_BAD = ['666-12-3456', '000-12-3456', '123-00-4567', '123-45-0000', '078-05-1120', '912-34-5678', '12-345-6789'];
const SIN_BAD = ['046454286', '812345678', '123456789', '9876543', '13069254X'];
const BAD_DATES = ['not-a-date', '1990-02-30', '31/12/1980', '2023-02-29', '', '1985-13-01', '1990-1-1', '1990-01-01\t', 'a\\b\nc'];
const BAD_TENANTS = [null, '..', '.', '', ' ', 'acme corp', 'x'.repeat(65), '../etc', '-lead', 'tenant/1', 'a\tb', 'a\\b'];
const BAD_AMOUNTS = ['n/a', '1,234.50', '12.345', '1e3', '1234567890123.00'];

interface Worker {
  tenant: string | null;
  id: string;
  type: string;
}

export class Hub {
  readonly damage: Damage[] = [];
  /** Worker rows deleted by the corruption (whole rows, for resurrection). */
  readonly deleted: { id: string; row: unknown }[] = [];

  constructor(readonly h: HistoryHarness) {}

  async set(table: string, where: Record<string, string | null>, column: string, value: string | null, day: string): Promise<void> {
    const cond = sql.join(
      Object.entries(where).map(([c, v]) => sql`${sql.id(c)} is not distinct from ${v}`),
      sql` and `,
    );
    const { rows } = await sql<{ v: string | null }>`select ${sql.id(column)}::text as v from ${hubTable(this.h, table)} where ${cond}`.execute(hubOf(this.h));
    if (rows.length !== 1) return;
    await sql`update ${hubTable(this.h, table)} set ${sql.id(column)} = ${value}, updated_at = ${`${day}T12:00:00Z`}::timestamptz where ${cond}`.execute(
      hubOf(this.h),
    );
    this.damage.push({ table, where: column in where ? { ...where, [column]: value } : where, column, original: rows[0]!.v });
  }

  async repair(rng: Rng, day: string): Promise<void> {
    if (!this.damage.length) return;
    const i = int(rng, 0, this.damage.length - 1);
    const d = this.damage.splice(i, 1)[0]!;
    const cond = sql.join(
      Object.entries(d.where).map(([c, v]) => sql`${sql.id(c)} is not distinct from ${v}`),
      sql` and `,
    );
    await sql`update ${hubTable(this.h, d.table)} set ${sql.id(d.column)} = ${d.original}, updated_at = ${`${day}T13:00:00Z`}::timestamptz where ${cond}`.execute(
      hubOf(this.h),
    );
  }

  /** Workers whose rows are undamaged, in a stable order. */
  async workers(): Promise<Worker[]> {
    const { rows } =
      await sql<Worker>`select tenant_id as tenant, worker_id as id, national_id_type as type from ${hubTable(this.h, 'workers')} order by worker_id, tenant_id`.execute(
        hubOf(this.h),
      );
    const damaged = new Set(this.damage.filter((d) => d.table === 'workers').map((d) => d.where.worker_id));
    return rows.filter((w) => !damaged.has(w.id) && tenantIdProblem(w.tenant) === null);
  }
}

/** One day's corruption, all drawn from the day's stream. */
export async function corrupt(state: Hub, rng: Rng, day: string): Promise<void> {
  const { h } = state;
  const workers = await state.workers();
  // Removals (deletes, tenant moves) are held under the mass-delete guard's 5 rows a tenant.
  const removed = new Map<string, number>();
  const canRemove = (w: Worker) => (removed.get(w.tenant!) ?? 0) < 2;
  const used = new Set<string>();
  const anyWorker = (filter: (w: Worker) => boolean = () => true): Worker | undefined => {
    const pool = workers.filter((w) => !used.has(w.id) && filter(w));
    const w = pool.length ? pick(rng, pool) : undefined;
    if (w) used.add(w.id);
    if (w && filter === canRemove) removed.set(w.tenant!, (removed.get(w.tenant!) ?? 0) + 1);
    return w;
  };
  const at = (w: Worker) => ({ tenant_id: w.tenant, worker_id: w.id });
  const times = (max: number) => int(rng, 0, max);

  for (let n = times(2); n > 0; n--) {
    const w = anyWorker();
    if (w) await state.set('workers', at(w), 'birth_date', pick(rng, BAD_DATES), day);
  }
  for (let n = times(2); n > 0; n--) {
    const w = anyWorker();
    // Not the names: the demo hub's own day of changes derives e-mail addresses from them.
    if (w) await state.set('workers', at(w), pick(rng, ['national_id', 'birth_date', 'bank_account', 'address_line1', 'city']), null, day);
  }
  for (let n = times(2); n > 0; n--) {
    const w = anyWorker((x) => ['NINO', 'SSN', 'SIN'].includes(x.type));
    if (w) await state.set('workers', at(w), 'national_id', pick(rng, w.type === 'NINO' ? NINO_BAD : w.type === 'SSN' ? SSN_BAD : SIN_BAD), day);
  }
  for (let n = times(1); n > 0; n--) {
    const w = anyWorker();
    // Some break the contract (enumeration, length); a country 'G1' or 'ÉÉ' does not, and must still not break a filing.
    const [column, value] = pick(rng, [
      ['status', 'retired'],
      ['gender', 'X'],
      ['country', 'GBR'],
      ['country', 'G1'],
      ['country', 'ÉÉ'],
    ] as const);
    if (w) await state.set('workers', at(w), column, value, day);
  }
  for (let n = times(2); n > 0; n--) {
    const w = anyWorker(canRemove);
    if (w) await state.set('workers', at(w), 'tenant_id', pick(rng, BAD_TENANTS), day);
  }
  for (let n = times(1); n > 0; n--) {
    const w = anyWorker(canRemove);
    if (!w) continue;
    const { rows } = await sql<{
      row: unknown;
    }>`select to_jsonb(w) as row from ${hubTable(h, 'workers')} w where tenant_id = ${w.tenant} and worker_id = ${w.id}`.execute(hubOf(h));
    await sql`delete from ${hubTable(h, 'workers')} where tenant_id = ${w.tenant} and worker_id = ${w.id}`.execute(hubOf(h));
    state.deleted.push({ id: w.id, row: rows[0]!.row });
  }
  if (state.deleted.length && rng.next() < 0.5) {
    const [back] = state.deleted.splice(int(rng, 0, state.deleted.length - 1), 1);
    await sql`insert into ${hubTable(h, 'workers')} select * from jsonb_populate_record(null::${hubTable(h, 'workers')}, ${JSON.stringify(back!.row)}::jsonb)`.execute(
      hubOf(h),
    );
    await sql`update ${hubTable(h, 'workers')} set updated_at = ${`${day}T14:00:00Z`}::timestamptz where worker_id = ${back!.id}`.execute(hubOf(h));
  }
  if (rng.next() < 0.5) {
    const { rows } = await sql<{
      tenant: string;
      id: string;
    }>`select tenant_id as tenant, contract_id as id from ${hubTable(h, 'contracts')} order by 2, 1`.execute(hubOf(h));
    const k = pick(rng, rows);
    await state.set('contracts', { tenant_id: k.tenant, contract_id: k.id }, 'hours_per_week', pick(rng, ['3000000000', '-2147483649']), day);
  }
  if (rng.next() < 0.5) {
    const { rows } = await sql<{
      tenant: string;
      worker: string;
      start: string;
    }>`select tenant_id as tenant, worker_id as worker, period_start::text as start from ${hubTable(h, 'payroll_results')} order by 2, 3, 1`.execute(hubOf(h));
    const p = pick(rng, rows);
    await state.set('payroll_results', { tenant_id: p.tenant, worker_id: p.worker, period_start: p.start }, 'gross', pick(rng, BAD_AMOUNTS), day);
  }
  if (rng.next() < 0.3) {
    const { rows } = await sql<{
      tenant: string | null;
      id: string;
    }>`select tenant_id as tenant, client_id as id from ${hubTable(h, 'clients')} order by 2, 1`.execute(hubOf(h));
    const c = pick(
      rng,
      rows.filter((r) => tenantIdProblem(r.tenant) === null),
    );
    if (c) {
      const [column, value] = pick(rng, [
        ['status', 'retired'],
        ['tenant_id', null],
        ['tenant_id', '..'],
      ] as const);
      await state.set('clients', { tenant_id: c.tenant, client_id: c.id }, column, value, day);
    }
  }
  for (let n = times(3); n > 0; n--) await state.repair(rng, day);
}
