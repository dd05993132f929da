import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jurisdiction } from '../../jurisdictions/index.ts';
import type { FilingEmployee } from '../../jurisdictions/types.ts';
import { openHub } from '../../hub/db.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { extractFiling, type RecordReject } from '../../tasks/filings/extract.ts';
import { readManifest } from '../../tasks/filings/outbox.ts';
import { findPeriod } from '../../tasks/filings/period.ts';
import { taskStates, TEST_DATABASE_URL } from '../support.ts';
import { filingHarness, runCycle, type FilingHarness } from './support.ts';

/**
 * The record contract at the filing extract, on a hub with ordinary imperfections: a text column
 * holding something that is not a date, an amount that is not a number, required values that
 * are null, worker rows and payslips without a tenant. Each breaks one worker's record, which
 * is rejected with its field and rule; the employer's filing goes on without it, and nothing
 * hangs.
 */

let h: FilingHarness;
const TENANT = 'northwind-health';
const fps = jurisdiction('gb-rti-fps');
const PERIOD = '2025-26-M09';
const t = (table: string) => sql.id(h.hubSchema, table);

async function extract(hub = h.rt.connections.hub(), sink?: (employees: AsyncIterable<FilingEmployee>) => Promise<number>, signal?: AbortSignal) {
  const records: FilingEmployee[] = [];
  const rejects: RecordReject[][] = [];
  const outcome = await extractFiling({
    hub,
    schema: h.hubSchema,
    entities: HUB_ENTITIES,
    jurisdiction: fps,
    tenant: TENANT,
    period: findPeriod(fps, PERIOD)!,
    sink: sink
      ? (_e, employees) => sink(employees)
      : async (_e, employees) => {
          for await (const e of employees) records.push(e);
          return records.length;
        },
    onReject: (v) => void rejects.push(v),
    signal,
  });
  return { outcome, records, rejects };
}

let clean: string[];
/** Five paid workers of the GB employer, each given one kind of bad data. */
let bad: {
  date: string;
  amount: string;
  nullId: string;
  noTenant: string;
  payslipNoTenant: string;
  payDate: string;
  contractTenant: string;
  payslipTenant: string;
  longCountry: string;
  oddGender: string;
};

beforeAll(async () => {
  h = await filingHarness();
  clean = (await extract()).records.map((r) => r.workerId);
  expect(clean.length).toBeGreaterThan(10);
  const [date, amount, nullId, noTenant, payslipNoTenant, payDate, contractTenant, payslipTenant, longCountry, oddGender] = clean.slice(2, 12) as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  bad = { date, amount, nullId, noTenant, payslipNoTenant, payDate, contractTenant, payslipTenant, longCountry, oddGender };
  // A hub whose columns are looser than the entity definitions, as a real one may be.
  await sql`alter table ${t('workers')} alter column birth_date type text, alter column national_id drop not null`.execute(h.rt.db);
  await sql`alter table ${t('payroll_results')} alter column gross type text, alter column pay_date type text`.execute(h.rt.db);
  for (const table of ['workers', 'payroll_results']) {
    await sql`alter table ${t(table)} drop constraint ${sql.id(`${table}_pkey`)}, alter column tenant_id drop not null`.execute(h.rt.db);
  }
  await sql`update ${t('workers')} set birth_date = 'not-a-date' where tenant_id = ${TENANT} and worker_id = ${date}`.execute(h.rt.db);
  await sql`update ${t('payroll_results')} set gross = '1,234.50' where tenant_id = ${TENANT} and worker_id = ${amount} and pay_date >= '2025-12-01'`.execute(
    h.rt.db,
  );
  await sql`update ${t('workers')} set national_id = null where tenant_id = ${TENANT} and worker_id = ${nullId}`.execute(h.rt.db);
  // Values no type check catches: a country longer than its code, a gender outside the enumeration
  // (found by the history property test, seed 5: 'GBR' crashed the FPS mapping of the whole employer).
  await sql`update ${t('workers')} set country = 'GBR' where tenant_id = ${TENANT} and worker_id = ${longCountry}`.execute(h.rt.db);
  await sql`update ${t('workers')} set gender = 'X' where tenant_id = ${TENANT} and worker_id = ${oddGender}`.execute(h.rt.db);
  await sql`update ${t('workers')} set tenant_id = null where tenant_id = ${TENANT} and worker_id = ${noTenant}`.execute(h.rt.db);
  await sql`update ${t('payroll_results')} set tenant_id = null where tenant_id = ${TENANT} and worker_id = ${payslipNoTenant} and pay_date >= '2025-12-01'`.execute(
    h.rt.db,
  );
  // Not a day of any calendar: a pattern of digits alone would let the cast fail.
  await sql`update ${t('payroll_results')} set pay_date = '2025-11-31' where tenant_id = ${TENANT} and worker_id = ${payDate} and pay_date = '2025-11-28'`.execute(
    h.rt.db,
  );
  await sql`update ${t('contracts')} set tenant_id = '..' where tenant_id = ${TENANT} and worker_id = ${contractTenant}`.execute(h.rt.db);
  await sql`update ${t('payroll_results')} set tenant_id = ${`${TENANT}/x`} where tenant_id = ${TENANT} and worker_id = ${payslipTenant} and pay_date >= '2025-12-01'`.execute(
    h.rt.db,
  );
}, 90_000);

afterAll(async () => {
  await h?.close();
});

describe('the record contract at the filing extract', () => {
  it('rejects each broken worker with its field and rule, and extracts every other worker', async () => {
    const { outcome, records, rejects } = await extract();
    expect(outcome.rejected).toBe(10);
    const byWorker = Object.fromEntries(rejects.map((v) => [v[0]!.record, v.map((x) => `${x.field}:${x.rule}`)]));
    expect(byWorker).toEqual({
      [bad.date]: ['workers.birth_date:type'],
      [bad.amount]: ['payroll_results.gross:type'],
      [bad.nullId]: ['workers.national_id:not_null'],
      [bad.noTenant]: ['workers.tenant_id:not_null'],
      [bad.payslipNoTenant]: ['payroll_results.tenant_id:not_null'],
      [bad.payDate]: ['payroll_results.pay_date:type'],
      [bad.contractTenant]: ['contracts.tenant_id:tenant'],
      [bad.payslipTenant]: ['payroll_results.tenant_id:tenant'],
      [bad.longCountry]: ['workers.country:max_length'],
      [bad.oddGender]: ['workers.gender:enum'],
    });
    expect(records.map((r) => r.workerId)).toEqual(clean.filter((w) => !(Object.values(bad) as string[]).includes(w)));
    const messages = rejects.flat().map((v) => v.message);
    for (const v of rejects.flat()) expect(v.record).toMatch(/^W\d+$/);
    expect(messages.find((m) => m.includes('tenant is null'))).toBe(
      `the worker has payslips under employer ${outcome.employer!.orgId}, but the worker row's tenant is null: it belongs to no tenant`,
    );
    // Personal values are masked in reasons; the raw row keeps them.
    expect(messages.join('\n')).not.toContain('not-a-date');
    expect(messages.find((m) => m.includes('birth_date'))).toContain('[pii value masked, 10 characters]');
    expect(JSON.parse(rejects.flat().find((v) => v.record === bad.date)!.raw)).toMatchObject({ worker_id: bad.date, birth_date: 'not-a-date' });
  });

  it('files the employer through the cycle without them: rejects in the store and the outbox, a file its validator passes', async () => {
    const run = await runCycle(h, '2026-01-02', { jurisdiction: 'gb-rti-fps', period: PERIOD, tenant: TENANT });
    expect(run.state, JSON.stringify(await taskStates(h.rt, run.id))).toBe('success');
    const folder = path.join(h.outbox, 'gb-rti-fps', PERIOD, TENANT);
    const manifest = (await readManifest(path.join(folder, 'manifest.json')))!;
    // Every worker the clean hub had is accounted for: filed, or rejected (at extract or by the FPS rules).
    expect(manifest.records + manifest.rejected).toBe(clean.length);
    expect(manifest.rejected).toBeGreaterThanOrEqual(10);
    const file = path.join(folder, manifest.file.name);
    expect((await fps.validateFile(file)).violations).toEqual([]);
    const lines = (await readFile(path.join(folder, 'rejects.jsonl'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, string>);
    expect(lines.slice(0, 10).map((l) => [l.record, l.rule])).toEqual((Object.values(bad) as string[]).sort().map((w) => [w, expect.any(String)]));
    expect(lines.some((l) => 'raw' in l)).toBe(false);
    const stored = await h.rt.db
      .selectFrom('rejects')
      .selectAll()
      .where('run_id', '=', run.id)
      .where('task_id', '=', 'extract')
      .orderBy('record_key')
      .execute();
    expect(stored.map((r) => [r.kind, r.entity, r.tenant_id, r.record_key, r.field, r.reason.split(':')[0]])).toEqual(
      [
        [bad.date, 'workers.birth_date', 'type'],
        [bad.amount, 'payroll_results.gross', 'type'],
        [bad.nullId, 'workers.national_id', 'not_null'],
        [bad.noTenant, 'workers.tenant_id', 'not_null'],
        [bad.payslipNoTenant, 'payroll_results.tenant_id', 'not_null'],
        [bad.payDate, 'payroll_results.pay_date', 'type'],
        [bad.contractTenant, 'contracts.tenant_id', 'tenant'],
        [bad.payslipTenant, 'payroll_results.tenant_id', 'tenant'],
        [bad.longCountry, 'workers.country', 'max_length'],
        [bad.oddGender, 'workers.gender', 'enum'],
      ]
        .sort((a, b) => a[0]!.localeCompare(b[0]!))
        .map(([w, f, rule]) => ['filing', 'filing:gb-rti-fps', TENANT, w, f, rule]),
    );
    expect(JSON.parse(stored.find((r) => r.record_key === bad.amount)!.raw!)).toMatchObject({ worker_id: bad.amount });
  });

  it('a sink that fails or stops mid-COPY ends the snapshot and gives its connection back', async () => {
    // One connection: a leaked one would make the next extract wait forever.
    const hub = openHub(TEST_DATABASE_URL, 1);
    try {
      const failing = extract(hub, async (employees) => {
        for await (const _ of employees) throw new Error('the disk is full');
        return 0;
      });
      await expect(failing).rejects.toThrow('the disk is full');
      await expect(extract(hub, async () => 0)).rejects.toThrow(/stopped reading before the end/);
      // A task timeout mid-COPY (the sink is slow) ends it the same way.
      const slow = extract(
        hub,
        async (employees) => {
          for await (const _ of employees) await new Promise((resolve) => setTimeout(resolve, 20));
          return 0;
        },
        AbortSignal.timeout(100),
      );
      await expect(slow).rejects.toThrow(/timeout|aborted/i);
      const again = await extract(hub);
      expect(again.outcome.rejected).toBe(10);
    } finally {
      await hub.destroy();
    }
  });

  it("stops the employer's filing, naming the org, field and rule, when the employer itself lacks a required value", async () => {
    const { employer } = (await extract()).outcome;
    await sql`alter table ${t('orgs')} alter column tax_id drop not null`.execute(h.rt.db);
    const taxId = employer!.taxId;
    await sql`update ${t('orgs')} set tax_id = null where tenant_id = ${TENANT} and org_id = ${employer!.orgId}`.execute(h.rt.db);
    try {
      await expect(extract()).rejects.toThrow(`employer ${employer!.orgId} of tenant '${TENANT}': orgs.tax_id (not_null) is null`);
    } finally {
      await sql`update ${t('orgs')} set tax_id = ${taxId} where tenant_id = ${TENANT} and org_id = ${employer!.orgId}`.execute(h.rt.db);
    }
  });
});
