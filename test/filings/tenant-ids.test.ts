import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFilingConf } from '../../tasks/filings/conf.ts';
import { filingFolder } from '../../tasks/filings/outbox.ts';
import { stagingDirOf } from '../../tasks/filings/staging.ts';
import { taskStates } from '../support.ts';
import { filingHarness, runCycle, taskErrors, type FilingHarness } from './support.ts';

/**
 * Tenant ids name the outbox's and staging's folders. An employer whose tenant id is null,
 * empty, '.', '..' or otherwise invalid is never planned (its folder would be another's, or
 * outside the root) and never vanishes either: each of its due filings is rejected with the
 * reason, alerted, and fails the run, while every other tenant's filing is made.
 */

let h: FilingHarness;
const t = (table: string) => sql.id(h.hubSchema, table);
/** Employers given odd tenant ids: org id -> tenant id as the hub holds it. */
const ODD: [string, string | null, string][] = [
  ['O-DOTDOT', '..', 'GB'],
  ['O-DOT', '.', 'US'],
  ['O-EMPTY', '', 'US'],
  ['O-NULL', null, 'CA'],
];

beforeAll(async () => {
  h = await filingHarness();
  // A hub that lets tenant ids be null, as a real one may.
  await sql`alter table ${t('orgs')} drop constraint orgs_pkey, alter column tenant_id drop not null`.execute(h.rt.db);
  for (const [orgId, tenant, country] of ODD) {
    await sql`insert into ${t('orgs')} select ${tenant}, ${orgId}, client_id, legal_name, ${country}, registration_number, tax_id, payroll_ref, accounts_office_ref, address_line1, city, postcode, employer_of_record, updated_at
                from ${t('orgs')} where tenant_id = 'northwind-health' and country = ${country === 'CA' ? 'GB' : country} limit 1`.execute(h.rt.db);
  }
}, 90_000);

afterAll(async () => {
  await h?.close();
});

describe('tenant ids in the filing cycle', () => {
  it('refuses the filings of employers with an invalid tenant id, reports each, and files every other tenant', async () => {
    const run = await runCycle(h, '2026-01-01');
    const states = await taskStates(h.rt, run.id);
    expect(run.state, JSON.stringify(states)).toBe('failed');
    expect(
      Object.entries(states)
        .filter(([, s]) => s === 'failed')
        .map(([task]) => task),
    ).toEqual(['report']);
    // Every valid tenant's due filing is made.
    for (const f of ['us-efw2/2025/northwind-health', 'us-efw2/2025/globex-media', 'ca-t4/2025/initech-media']) {
      expect(existsSync(path.join(h.outbox, f, 'manifest.json')), f).toBe(true);
    }
    // Nothing was written beside them: no folder named by an invalid id, none outside the outbox.
    expect((await readdir(path.dirname(h.outbox))).sort()).toEqual(['outbox', 'staging']);
    expect((await readdir(path.join(h.outbox, 'us-efw2', '2025'))).sort()).toEqual(['globex-media', 'northwind-health']);

    const stored = await h.rt.db.selectFrom('rejects').selectAll().where('run_id', '=', run.id).where('task_id', '=', 'plan').orderBy('record_key').execute();
    expect(stored.map((r) => [r.kind, r.entity, r.record_key, r.tenant_id, r.field, r.reason.split(':')[0]])).toEqual([
      ['filing', 'filing:us-efw2', 'O-DOT', '.', 'tenant_id', 'tenant'],
      ['filing', 'filing:gb-rti-fps', 'O-DOTDOT', '..', 'tenant_id', 'tenant'],
      ['filing', 'filing:us-efw2', 'O-EMPTY', '', 'tenant_id', 'tenant'],
      ['filing', 'filing:ca-t4', 'O-NULL', null, 'tenant_id', 'tenant'],
    ]);
    expect(stored.find((r) => r.record_key === 'O-NULL')!.reason).toBe('tenant: tenant id is missing (null)');
    expect(stored.find((r) => r.record_key === 'O-EMPTY')!.reason).toBe('tenant: tenant id is empty');

    // '..' had an FPS due by 31 December: it is reported, with its deadline, not forgotten.
    const notFiled = h.alerts
      .filter((a) => a.message.startsWith('filing NOT FILED'))
      .map((a) => a.message)
      .sort();
    expect(notFiled).toHaveLength(4);
    expect(notFiled).toContainEqual(
      expect.stringMatching(/^filing NOT FILED: gb-rti-fps 2025-26-M09 for employer O-DOTDOT: tenant id "\.\." is not .*deadline 2025-12-31T23:59:59\.999Z\)$/),
    );
    const report = await taskErrors(h, run.id);
    expect(report).toEqual([{ task: 'report[-1]', message: expect.stringMatching(/^4 filings not made because the employer's tenant id is invalid: /) }]);
    expect(report[0]!.message).toContain('ca-t4 2025 for employer O-NULL (tenant id is missing (null))');
  });

  it('never builds a folder from an invalid id', () => {
    for (const tenant of ['..', '.', '', 'a/b', '../../etc']) {
      const item = { jurisdiction: 'us-efw2', period: '2025', tenant };
      expect(() => filingFolder(h.outbox, item), tenant).toThrow(/tenant id/);
      expect(() => stagingDirOf(h.staging, item, 1), tenant).toThrow(/tenant id/);
    }
    expect(() => filingFolder(h.outbox, { jurisdiction: 'us-efw2', period: '..', tenant: 'acme' })).toThrow(/period id "\.\."/);
    expect(() => filingFolder(h.outbox, { jurisdiction: '.', period: '2025', tenant: 'acme' })).toThrow(/jurisdiction id "\."/);
    expect(filingFolder(h.outbox, { jurisdiction: 'us-efw2', period: '2025', tenant: 'acme.eu_1' })).toBe(path.join(h.outbox, 'us-efw2', '2025', 'acme.eu_1'));
  });
});

describe('selecting tenants', () => {
  it('files exactly the tenants a run selects with `tenants`', async () => {
    const run = await runCycle(h, '2026-01-05', { jurisdiction: 'us-efw2', period: '2025', tenants: ['globex-media'] });
    expect(run.state, JSON.stringify(await taskStates(h.rt, run.id))).toBe('success');
    const plan = await h.rt.db
      .selectFrom('task_instances')
      .select('result')
      .where('run_id', '=', run.id)
      .where('task_id', '=', 'plan')
      .executeTakeFirstOrThrow();
    expect(plan.result).toEqual([{ jurisdiction: 'us-efw2', period: '2025', tenant: 'globex-media' }]);
  });

  it('refuses an unknown tenant, and an invalid one, with a clear error', async () => {
    const run = await runCycle(h, '2026-01-06', { tenants: ['globex-media', 'no-such-tenant'] });
    expect(run.state).toBe('failed');
    expect(await taskErrors(h, run.id)).toContainEqual({
      task: 'plan[-1]',
      message: expect.stringMatching(
        /^unknown tenant 'no-such-tenant': no employer in the hub belongs to it; tenants with employers: globex-media, initech-media, northwind-health$/,
      ),
    });
    expect(() => parseFilingConf({ tenants: ['acme', '..'] })).toThrow(/invalid filing conf: tenant id "\.\." is not 1-64 characters/);
    expect(() => parseFilingConf({ tenant: '' })).toThrow(/invalid filing conf: tenant id is empty/);
    expect(parseFilingConf({ tenant: 'a', tenants: ['b', 'a'] }).selection).toEqual({ tenants: ['a', 'b'] });
  });
});
