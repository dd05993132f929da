import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateIban, validateRoutingNumber } from '../../demo/bank.ts';
import { HUB_ENTITIES, parseEntities } from '../../hub/entities.ts';
import {
  validateAccountsOfficeReference,
  validateBn,
  validateCcc,
  validateCif,
  validateEin,
  validateNationalId,
  validatePayeReference,
  validateRsin,
  validateSiren,
  validateUtr,
  type Validator,
} from '../../demo/identifiers.ts';
import { createHubSchema, hubDdl } from '../../demo/schema.ts';
import { mutateHub } from '../../demo/mutate.ts';
import { seedHub } from '../../demo/seed.ts';
import { hubStats } from '../../demo/stats.ts';
import { tableDigests, testHub } from './hub-support.ts';

const hub = testHub();
const db = hub.db;
const [a, b, c] = [hub.schema('a'), hub.schema('b'), hub.schema('c')];
const options = { tenants: 4, workers: 2_000, seed: 42 };

beforeAll(async () => {
  await seedHub(db, a, options);
  await seedHub(db, b, options);
  await seedHub(db, c, { ...options, seed: 43 });
});
afterAll(() => hub.close());

const rows = async <T>(query: string) => (await sql.raw<T>(query).execute(db)).rows;

describe('seedHub', () => {
  it('is deterministic: the same seed gives byte-identical tables, another seed different ones', async () => {
    const [da, db_, dc] = [await tableDigests(db, a), await tableDigests(db, b), await tableDigests(db, c)];
    expect(db_).toEqual(da);
    for (const entity of ['clients', 'orgs', 'workers', 'contracts', 'payroll_results']) expect(dc[entity], entity).not.toBe(da[entity]);
    // Reference data does not depend on the seed.
    expect(dc.countries).toBe(da.countries);
  });

  it('loads the requested shape: workers in total, one contract each, 1-3 orgs per tenant, three payslips per employed worker', async () => {
    const counts = await hubStats(db, a);
    const total = (entity: string) => counts.filter((x) => x.entity === entity).reduce((s, x) => s + x.rows, 0);
    expect(total('workers')).toBe(2_000);
    expect(total('contracts')).toBe(2_000);
    expect(counts.filter((x) => x.entity === 'clients')).toHaveLength(4);
    expect(counts.find((x) => x.entity === 'countries')?.tenant).toBeNull();
    const [orgs] = await rows<{ min: number; max: number; mixed: number }>(
      `select min(n)::int as min, max(n)::int as max, (select count(*)::int from (select tenant_id from ${a}.orgs group by 1 having count(distinct country) <> count(*)) x) as mixed
       from (select count(*) as n from ${a}.orgs group by tenant_id) o`,
    );
    expect(orgs).toEqual({ min: expect.any(Number), max: expect.any(Number), mixed: 0 });
    expect(orgs!.min).toBeGreaterThanOrEqual(1);
    expect(orgs!.max).toBeLessThanOrEqual(3);
    const [pay] = await rows<{ terminated: number; employed_without: number; over: number; net_off: number }>(`
      select
        (select count(*)::int from ${a}.payroll_results p join ${a}.workers w using (tenant_id, worker_id) where w.status = 'terminated') as terminated,
        (select count(*)::int from ${a}.workers w where status <> 'terminated' and hire_date < '2025-10-01'
           and (select count(*) from ${a}.payroll_results p where p.tenant_id = w.tenant_id and p.worker_id = w.worker_id) <> 3) as employed_without,
        (select count(*)::int from ${a}.payroll_results where gross <= 0 or net <= 0 or net >= gross) as over,
        (select count(*)::int from ${a}.payroll_results where net <> gross - income_tax - employee_social) as net_off`);
    expect(pay).toEqual({ terminated: 0, employed_without: 0, over: 0, net_off: 0 });
    const [contracts] = await rows<{ bad: number }>(`
      select count(*)::int as bad from ${a}.contracts k join ${a}.orgs o using (tenant_id, org_id) join ${a}.workers w using (tenant_id, worker_id)
      where k.country <> o.country or w.country <> o.country or k.start_date <> w.hire_date`);
    expect(contracts!.bad).toBe(0);
  });

  it('gives every tenant-scoped row a tenant, and every table the updated_at it needs', async () => {
    for (const e of Object.values(HUB_ENTITIES).filter((x) => x.tenantScoped)) {
      const [r] = await rows<{ missing: number; rows: number }>(
        `select count(*) filter (where tenant_id is null or tenant_id = '')::int as missing, count(*)::int as rows from ${a}.${e.table}`,
      );
      expect(r!.rows, e.name).toBeGreaterThan(0);
      expect(r!.missing, e.name).toBe(0);
    }
    const [late] = await rows<{ n: number }>(`select count(*)::int as n from ${a}.workers where updated_at > '2026-01-01'`);
    expect(late!.n).toBe(0);
  });

  it('writes only national ids, employer references and bank accounts that validate', async () => {
    const workers = await rows<{ national_id_type: string; national_id: string; country: string; bank_account: string; bank_code: string | null }>(
      `select national_id_type, national_id, country, bank_account, bank_code from ${a}.workers`,
    );
    const bad = workers.flatMap((w) => {
      const reasons = [validateNationalId(w.national_id_type, w.national_id)];
      if (w.country === 'US') reasons.push(validateRoutingNumber(w.bank_code ?? ''));
      else if (w.country !== 'CA') reasons.push(validateIban(w.bank_account));
      return reasons.filter(Boolean).map((r) => `${w.national_id_type} ${w.national_id} ${w.bank_account}: ${r}`);
    });
    expect(bad).toEqual([]);
    expect(new Set(workers.map((w) => w.national_id_type)).size).toBeGreaterThanOrEqual(3);

    const orgs = await rows<{ country: string; registration_number: string; tax_id: string; payroll_ref: string | null; accounts_office_ref: string | null }>(
      `select * from ${a}.orgs`,
    );
    const checks: Record<string, [keyof (typeof orgs)[number], Validator][]> = {
      GB: [
        ['tax_id', validateUtr],
        ['payroll_ref', validatePayeReference],
        ['accounts_office_ref', validateAccountsOfficeReference],
      ],
      US: [['tax_id', validateEin]],
      CA: [
        ['tax_id', validateBn],
        ['payroll_ref', validateBn],
      ],
      FR: [
        ['registration_number', validateSiren],
        ['payroll_ref', validateSiren],
      ],
      NL: [['tax_id', validateRsin]],
      ES: [
        ['tax_id', validateCif],
        ['payroll_ref', validateCcc],
      ],
      DE: [],
    };
    for (const org of orgs)
      for (const [field, validate] of checks[org.country]!) expect(validate(org[field] ?? ''), `${org.country} ${field} ${org[field]}`).toBeNull();
    const ca = orgs.find((o) => o.country === 'CA');
    if (ca) expect(ca.payroll_ref).toBe(`${ca.tax_id}RP0001`);
  });

  it('includes the edge cases: non-Latin names, addresses over 200 characters, null optional fields', async () => {
    const [edge] = await rows<Record<string, number>>(`
      select
        count(*) filter (where given_name ~ '[^\\u0000-\\u024F]' or family_name ~ '[^\\u0000-\\u024F]')::int as non_latin,
        count(*) filter (where given_name ~ '[À-ÿŁłØøß]' or family_name ~ '[À-ÿŁłØøß]')::int as accented,
        count(*) filter (where length(address_line1) > 200)::int as long_address,
        count(*) filter (where email is null)::int as no_email,
        count(*) filter (where address_line2 is null)::int as no_line2,
        count(*) filter (where termination_date is null)::int as no_termination,
        count(*) filter (where termination_date is not null)::int as terminated
      from ${a}.workers`);
    for (const [name, n] of Object.entries(edge!)) expect(n, name).toBeGreaterThan(0);
    const [first] = await rows<{ long: number; script: string; email: string | null }>(`
      select (select length(address_line1) from ${a}.workers where worker_id = 'W000000001')::int as long,
             (select given_name from ${a}.workers where worker_id = 'W000000002') as script,
             (select email from ${a}.workers where worker_id = 'W000000003') as email`);
    expect(first!.long).toBeGreaterThan(200);
    expect(first!.script).toMatch(/[^\u0000-\u024F]/);
    expect(first!.email).toBeNull();
  });

  it('refuses a hub that already has rows unless reset, and reset replaces it', async () => {
    await expect(seedHub(db, b, options)).rejects.toThrow(/already has rows.*reset/);
    const result = await seedHub(db, b, { ...options, workers: 10, reset: true });
    expect(result.rows.workers).toBe(10);
    const [seq] = await rows<{ last_value: number }>(`select last_value::int from ${b}.workers_id_seq`);
    expect(seq!.last_value).toBe(10);
  });

  it('never drops or fills tables it did not create', async () => {
    const foreign = hub.schema('real');
    await sql.raw(`create schema ${foreign}; create table ${foreign}.workers (worker_id text primary key)`).execute(db);
    await expect(seedHub(db, foreign, { ...options, workers: 5, reset: true })).rejects.toThrow(/refusing.*workers.*not created as a demo hub/);
    await expect(seedHub(db, foreign, { ...options, workers: 5 })).rejects.toThrow(/refusing/);
    const [still] = await rows<{ n: number }>(`select count(*)::int as n from information_schema.tables where table_schema = '${foreign}'`);
    expect(still!.n).toBe(1);
  });
});

describe('the hub schema', () => {
  it('is created from the entity configuration, idempotently', async () => {
    const s = hub.schema('ddl');
    await createHubSchema(db, s);
    await createHubSchema(db, s);
    const [t] = await rows<{ n: number }>(`select count(*)::int as n from information_schema.tables where table_schema = '${s}'`);
    expect(t!.n).toBe(Object.keys(HUB_ENTITIES).length);
    const ddl = hubDdl();
    expect(ddl).toContain('create table if not exists hub.workers (\n  tenant_id text collate "C" not null,\n  worker_id text collate "C" not null,');
    expect(ddl).toContain('primary key (tenant_id, worker_id)');
    expect(ddl).toContain('create index if not exists workers_tenant_id_updated_at on hub.workers (tenant_id, updated_at);');
    expect(ddl).toMatch(/create table if not exists hub\.countries \(\n {2}code text collate "C" not null,/);
    expect(ddl).not.toMatch(/countries \([^)]*tenant_id/);
  });

  it('rejects an inconsistent entity configuration, naming the field', () => {
    const workers = HUB_ENTITIES.workers!;
    expect(() => parseEntities({ workers: { ...workers, tenantColumn: null } })).toThrow(/workers\.tenantColumn/);
    expect(() => parseEntities({ workers: { ...workers, key: ['nope'] } })).toThrow(/workers\.key\.0: key field 'nope'/);
    expect(() => parseEntities({ workers: { ...workers, table: 'Workers' } })).toThrow(/workers\.table/);
  });

  it('seeds and mutates a hub mapped to other table and column names', async () => {
    const s = hub.schema('mapped');
    const workers = HUB_ENTITIES.workers!;
    const entities = parseEntities({
      ...HUB_ENTITIES,
      workers: {
        ...workers,
        table: 'hr_person',
        tenantColumn: 'client_key',
        columns: { ...workers.columns, given_name: { type: 'text', class: 'pii', column: 'first_nm' } },
      },
    });
    expect(hubDdl('mdm', entities)).toContain('first_nm text not null');
    await seedHub(db, s, { ...options, workers: 200, entities });
    const result = await mutateHub(db, s, { seed: 1, rate: 0.1, entities });
    const [r] = await rows<{ n: number; named: number }>(
      `select count(*)::int as n, count(first_nm)::int as named from ${s}.hr_person where client_key is not null`,
    );
    expect(r!.n).toBe(200 + result.hired - result.deleted);
    expect(r!.named).toBe(r!.n);
  });
});
