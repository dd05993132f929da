import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantViolationError } from '../../jurisdictions/common.ts';
import type { FilingEmployee } from '../../jurisdictions/types.ts';
import { readJsonLines, writeJsonLines } from '../../tasks/filings/staging.ts';
import { extractStep, fileOne, renderStep, validateStep } from '../../tasks/filings/steps.ts';
import type { Extracted, Validated } from '../../tasks/filings/types.ts';
import { taskErrors, filingHarness, runCycle, type FilingHarness } from './support.ts';

/**
 * Every filing belongs to one tenant and one employer. A record of another tenant reaching a
 * filing is an incident: the filing fails, nothing is written to the outbox, the other tenants'
 * filings go on, and the missed filing is alerted with its deadline.
 */

let h: FilingHarness;
let usOrg: string;

beforeAll(async () => {
  h = await filingHarness();
  usOrg = (
    await sql<{ org_id: string }>`select org_id from ${sql.id(h.hubSchema, 'orgs')} where tenant_id = 'northwind-health' and country = 'US'`.execute(h.rt.db)
  ).rows[0]!.org_id;
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('tenant isolation', () => {
  it("refuses a filing whose hub data holds another tenant's contract with the employer, and files the others", async () => {
    // A globex-media worker whose (corrupt) contract names northwind-health's US org, with a payslip.
    const { rows } = await sql<{ worker_id: string; contract_id: string }>`
      select worker_id, contract_id from ${sql.id(h.hubSchema, 'contracts')} where tenant_id = 'globex-media' order by contract_id limit 1`.execute(h.rt.db);
    const foreign = rows[0]!;
    await sql`update ${sql.id(h.hubSchema, 'contracts')} set org_id = ${usOrg} where tenant_id = 'globex-media' and contract_id = ${foreign.contract_id}`.execute(
      h.rt.db,
    );
    const paid = await sql<{
      n: number;
    }>`select count(*)::int as n from ${sql.id(h.hubSchema, 'payroll_results')} where tenant_id = 'globex-media' and contract_id = ${foreign.contract_id}`.execute(
      h.rt.db,
    );
    expect(paid.rows[0]!.n).toBeGreaterThan(0);

    const run = await runCycle(h, '2026-01-01');
    expect(run.state).toBe('failed');
    const errors = await taskErrors(h, run.id);
    const incident = errors.find((e) => e.message.includes(foreign.worker_id));
    expect(incident, JSON.stringify(errors)).toBeDefined();
    expect(incident!.task).toMatch(/^validate\[\d\]$/);
    expect(incident!.message).toContain("belongs to tenant 'globex-media'");
    expect(incident!.message).toContain("not to the filing's tenant 'northwind-health'");

    expect(existsSync(path.join(h.outbox, 'us-efw2', '2025', 'northwind-health'))).toBe(false);
    expect(existsSync(path.join(h.outbox, 'us-efw2', '2025', 'globex-media', 'manifest.json'))).toBe(true);
    expect(existsSync(path.join(h.outbox, 'ca-t4', '2025', 'initech-media', 'manifest.json'))).toBe(true);
    const missed = h.alerts.filter((a) => a.message.startsWith('filing NOT DELIVERED'));
    expect(missed.map((a) => a.message)).toEqual([expect.stringContaining("us-efw2 2025 for tenant 'northwind-health', deadline 2026-02-03T04:59:59.999Z")]);

    await sql`update ${sql.id(h.hubSchema, 'contracts')} set org_id = (select org_id from ${sql.id(h.hubSchema, 'orgs')} where tenant_id = 'globex-media' and country = 'US') where tenant_id = 'globex-media' and contract_id = ${foreign.contract_id}`.execute(
      h.rt.db,
    );
  });

  it('refuses a foreign record injected into the staged records at validation and at rendering, leaving no file', async () => {
    const env = h.env(9001);
    const item = { jurisdiction: 'us-efw2', period: '2025', tenant: 'globex-media' };
    const extracted = (await extractStep(env, item)) as Extracted;
    const records: FilingEmployee[] = [];
    for await (const e of readJsonLines<FilingEmployee>(extracted.recordsFile!)) records.push(e);
    const intruder: FilingEmployee = { ...records[1]!, tenantId: 'northwind-health', workerId: 'W999999999' };
    await writeJsonLines(
      extracted.recordsFile!,
      (async function* () {
        yield* records.slice(0, 3);
        yield intruder;
        yield* records.slice(3);
      })(),
    );
    await expect(validateStep(env, extracted)).rejects.toBeInstanceOf(TenantViolationError);

    // Past validation (records staged by something else), the renderer's own check still holds.
    const clean = (await validateStep(env, { ...extracted, recordsFile: await restage(extracted, records) })) as Validated;
    await writeJsonLines(
      clean.validFile,
      (async function* () {
        yield intruder;
      })(),
    );
    await expect(renderStep(env, clean)).rejects.toBeInstanceOf(TenantViolationError);
    expect((await readdir(extracted.dir)).filter((f) => f.startsWith('W2REPORT'))).toEqual([]);
    expect(existsSync(path.join(h.outbox, 'us-efw2', '2025', 'globex-media', 'manifest.json'))).toBe(true);
  });

  it('fileOne leaves no outbox folder and no staging when the filing is refused', async () => {
    const env = { ...h.env(9002), outboxDir: path.join(h.outbox, '..', 'outbox-2') };
    await sql`update ${sql.id(h.hubSchema, 'contracts')} set org_id = ${usOrg} where tenant_id = 'globex-media' and contract_id = (select min(contract_id) from ${sql.id(h.hubSchema, 'contracts')} where tenant_id = 'globex-media')`.execute(
      h.rt.db,
    );
    await expect(fileOne(env, { jurisdiction: 'us-efw2', period: '2025', tenant: 'northwind-health' })).rejects.toBeInstanceOf(TenantViolationError);
    expect(existsSync(env.outboxDir)).toBe(false);
    expect(existsSync(path.join(h.staging, 'filings', 'us-efw2', '2025', 'northwind-health', 'run-9002'))).toBe(false);
  });
});

async function restage(extracted: Extracted, records: FilingEmployee[]): Promise<string> {
  const file = path.join(extracted.dir, 'records-clean.jsonl.gz');
  await writeJsonLines(
    file,
    (async function* () {
      yield* records;
    })(),
  );
  return file;
}
