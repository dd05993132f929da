import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jurisdiction } from '../../jurisdictions/index.ts';
import { readManifest } from '../../tasks/filings/outbox.ts';
import type { Manifest } from '../../tasks/filings/manifest.ts';
import { taskStates } from '../support.ts';
import { filingHarness, hubSum, runCycle, taskErrors, type FilingHarness } from './support.ts';

/**
 * The filing-cycle DAG end to end on a seeded hub: a scheduled-style run files what is due,
 * a manual run files a named period, and each file is checked by its jurisdiction's own file
 * validator and against sums PostgreSQL computes from the hub.
 */

let h: FilingHarness;
const planted: Record<string, { worker: string; orgId: string }> = {};
const runs: Record<string, number> = {};

const folder = (code: string, period: string, tenant: string) => path.join(h.outbox, code, period, tenant);
const manifestOf = async (code: string, period: string, tenant: string) => (await readManifest(path.join(folder(code, period, tenant), 'manifest.json')))!;
const rejectsOf = async (code: string, period: string, tenant: string) =>
  (await readFile(path.join(folder(code, period, tenant), 'rejects.jsonl'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { record: string; field: string; rule: string; message: string });

/** Gives one ordinary, paid worker of the tenant's employer in `country` a broken national id. */
async function plantBadId(tenant: string, country: string, badId: string): Promise<{ worker: string; orgId: string }> {
  const { rows } = await sql<{ worker_id: string; org_id: string }>`
    select w.worker_id, k.org_id
      from ${sql.id(h.hubSchema, 'workers')} w
      join ${sql.id(h.hubSchema, 'contracts')} k on k.tenant_id = w.tenant_id and k.worker_id = w.worker_id
      join ${sql.id(h.hubSchema, 'orgs')} o on o.tenant_id = k.tenant_id and o.org_id = k.org_id
     where w.tenant_id = ${tenant} and o.country = ${country} and w.status = 'active' and w.gender is not null
       and w.given_name ~ '^[A-Za-z]+$' and w.family_name ~ '^[A-Za-z]+$' and w.hire_date < '2025-01-01'
       and w.country = ${country} and length(w.address_line1) < 30 and (w.country <> 'CA' or w.region is not null)
     order by w.worker_id limit 1`.execute(h.rt.db);
  const row = rows[0]!;
  await sql`update ${sql.id(h.hubSchema, 'workers')} set national_id = ${badId} where tenant_id = ${tenant} and worker_id = ${row.worker_id}`.execute(h.rt.db);
  return { worker: row.worker_id, orgId: row.org_id };
}

beforeAll(async () => {
  h = await filingHarness();
  planted.gb = await plantBadId('northwind-health', 'GB', 'QQ123456C');
  planted.us = await plantBadId('globex-media', 'US', '666-12-3456');
  planted.ca = await plantBadId('initech-media', 'CA', '130692545');
  // The morning after New Year: the annual returns open; December's FPS was due on 31 December.
  const scheduled = await runCycle(h, '2026-01-01');
  runs.scheduled = scheduled.id;
  expect(scheduled.state, JSON.stringify(await taskStates(h.rt, scheduled.id))).toBe('success');
  const gb = await runCycle(h, '2026-01-02', { jurisdiction: 'gb-rti-fps', period: '2025-26-M09' });
  runs.gb = gb.id;
  expect(gb.state, JSON.stringify(await taskStates(h.rt, gb.id))).toBe('success');
}, 90_000);

afterAll(async () => {
  await h?.close();
});

const FILINGS = [
  { code: 'us-efw2', period: '2025', tenant: 'northwind-health', yearStart: '2025-01-01', from: '2025-01-01', to: '2025-12-31' },
  { code: 'us-efw2', period: '2025', tenant: 'globex-media', yearStart: '2025-01-01', from: '2025-01-01', to: '2025-12-31' },
  { code: 'ca-t4', period: '2025', tenant: 'initech-media', yearStart: '2025-01-01', from: '2025-01-01', to: '2025-12-31' },
  { code: 'gb-rti-fps', period: '2025-26-M09', tenant: 'northwind-health', yearStart: '2025-04-06', from: '2025-12-06', to: '2026-01-05' },
] as const;

describe('the filing cycle', () => {
  it('files what is due for every tenant with an employer there, and alerts the FPS that missed its deadline', async () => {
    const report = (
      await h.rt.db
        .selectFrom('task_instances')
        .select('result')
        .where('run_id', '=', runs.scheduled!)
        .where('task_id', '=', 'report')
        .executeTakeFirstOrThrow()
    ).result;
    expect(report).toEqual({ planned: 3, delivered: 3, nothingToFile: 0, notDelivered: [], refused: [] });
    const overdue = h.alerts.filter((a) => a.message.startsWith('filing OVERDUE'));
    expect(overdue.map((a) => a.message)).toEqual([
      "filing OVERDUE: gb-rti-fps 2025-26-M09 for tenant 'northwind-health' was due by 2025-12-31T23:59:59.999Z and is not in the outbox",
    ]);
  });

  it.each(FILINGS)('writes a $code file for $tenant that its jurisdiction validates clean, with the manifest stating what the file states', async (f) => {
    const j = jurisdiction(f.code);
    const m = await manifestOf(f.code, f.period, f.tenant);
    const file = path.join(folder(f.code, f.period, f.tenant), m.file.name);
    expect(m.file.name).toBe(j.fileName({ id: f.period } as Parameters<typeof j.fileName>[0]));
    const { totals, violations } = await j.validateFile(file);
    expect(violations).toEqual([]);
    expect(m.records).toBe(totals.records);
    expect(m.records).toBeGreaterThan(5);
    expect(m.totals).toEqual(totals.money);
    expect(m).toMatchObject({ jurisdiction: f.code, tenant: f.tenant, period: { id: f.period }, file: { bytes: (await readFile(file)).length } });
  });

  it.each(FILINGS)('$code for $tenant: the totals are the hub payslips of the filed workers, to the cent', async (f) => {
    const m = await manifestOf(f.code, f.period, f.tenant);
    const rejected = [...new Set((await rejectsOf(f.code, f.period, f.tenant)).map((r) => r.record))];
    expect(rejected).toHaveLength(m.rejected);
    const where = { orgId: m.employer.orgId, from: f.from, to: f.to, excludeWorkers: rejected };
    const gross = await hubSum(h, 'gross', where);
    const tax = await hubSum(h, 'income_tax', where);
    expect(m.recordSums.gross).toBe(gross);
    expect(m.recordSums.incomeTax).toBe(tax);
    const j = jurisdiction(f.code);
    for (const [key, field] of Object.entries(j.recordTotals)) expect(m.totals[key], key).toBe(m.recordSums[field]);
    const workers = await sql<{ n: number }>`
      select count(distinct p.worker_id)::int as n from ${sql.id(h.hubSchema, 'payroll_results')} p
        join ${sql.id(h.hubSchema, 'contracts')} k on k.tenant_id = p.tenant_id and k.contract_id = p.contract_id
       where k.org_id = ${m.employer.orgId} and p.pay_date between ${f.yearStart}::date and ${f.to}::date`.execute(h.rt.db);
    expect(m.records + m.rejected).toBe(workers.rows[0]!.n);
  });

  it('rejects the planted bad national ids with record, field and rule, and files the other workers', async () => {
    const cases = [
      { code: 'gb-rti-fps', period: '2025-26-M09', tenant: 'northwind-health', planted: planted.gb!, rule: /^nino\./, written: 'QQ123456C' },
      { code: 'us-efw2', period: '2025', tenant: 'globex-media', planted: planted.us!, rule: /^ssn\.area$/, written: '666123456' },
      { code: 'ca-t4', period: '2025', tenant: 'initech-media', planted: planted.ca!, rule: /^sin\.luhn$/, written: '130692545' },
    ];
    for (const c of cases) {
      const rejects = (await rejectsOf(c.code, c.period, c.tenant)).filter((r) => r.record === c.planted.worker);
      expect(rejects, c.code).toHaveLength(1);
      expect(rejects[0]!.field).toBe('nationalId');
      expect(rejects[0]!.rule).toMatch(c.rule);
      // Identifiers are masked in messages.
      expect(rejects[0]!.message).not.toMatch(/QQ123456C|666-12-3456|130692545/);
      const m = await manifestOf(c.code, c.period, c.tenant);
      const text = await readFile(path.join(folder(c.code, c.period, c.tenant), m.file.name), 'utf8');
      expect(text).not.toContain(c.written);
    }
    const stored = await h.rt.db
      .selectFrom('rejects')
      .select(['kind', 'entity', 'tenant_id', 'record_key', 'field', 'reason'])
      .where('record_key', 'in', [planted.us!.worker, planted.ca!.worker, planted.gb!.worker])
      .orderBy('entity')
      .execute();
    expect(stored.map((r) => [r.kind, r.entity, r.tenant_id, r.record_key, r.field, r.reason.split(':')[0]])).toEqual([
      ['filing', 'filing:ca-t4', 'initech-media', planted.ca!.worker, 'nationalId', 'sin.luhn'],
      ['filing', 'filing:gb-rti-fps', 'northwind-health', planted.gb!.worker, 'nationalId', expect.stringMatching(/^nino\./)],
      ['filing', 'filing:us-efw2', 'globex-media', planted.us!.worker, 'nationalId', 'ssn.area'],
    ]);
  });

  it('re-files a period byte for byte: same file, same rejects, a manifest differing only in run and snapshot', async () => {
    const dir = folder('gb-rti-fps', '2025-26-M09', 'northwind-health');
    const before = await manifestOf('gb-rti-fps', '2025-26-M09', 'northwind-health');
    const file = await readFile(path.join(dir, before.file.name));
    const rejects = await readFile(path.join(dir, 'rejects.jsonl'));
    const again = await runCycle(h, '2026-01-03', { jurisdiction: 'gb-rti-fps', period: '2025-26-M09', tenant: 'northwind-health' });
    expect(again.state).toBe('success');
    const after = await manifestOf('gb-rti-fps', '2025-26-M09', 'northwind-health');
    expect(await readFile(path.join(dir, after.file.name))).toEqual(file);
    expect(await readFile(path.join(dir, 'rejects.jsonl'))).toEqual(rejects);
    const stable = (m: Manifest) => ({ ...m, runId: 0, hubSnapshotAt: '' });
    expect(stable(after)).toEqual(stable(before));
    expect(after.runId).toBe(again.id);
    expect(after.runId).not.toBe(before.runId);
    expect(h.alerts.some((a) => a.message.startsWith('filing REPLACED'))).toBe(false);
  });

  it('does not file again what the outbox already holds', async () => {
    const next = await runCycle(h, '2026-01-14');
    expect(next.state, JSON.stringify([await taskStates(h.rt, next.id), await taskErrors(h, next.id)])).toBe('success');
    const states = await taskStates(h.rt, next.id);
    expect(states.extract).toBe('skipped');
    const report = (
      await h.rt.db.selectFrom('task_instances').select('result').where('run_id', '=', next.id).where('task_id', '=', 'report').executeTakeFirstOrThrow()
    ).result;
    expect(report).toEqual({ planned: 0, delivered: 0, nothingToFile: 0, notDelivered: [], refused: [] });
  });
});
