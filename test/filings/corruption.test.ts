import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jurisdiction } from '../../jurisdictions/index.ts';
import { Mulberry32 } from '../../demo/prng.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { extractFiling } from '../../tasks/filings/extract.ts';
import { findPeriod } from '../../tasks/filings/period.ts';
import { fileOne } from '../../tasks/filings/steps.ts';
import type { FilingItem } from '../../tasks/filings/types.ts';
import { filingHarness, type FilingHarness } from './support.ts';

/**
 * Rounds of random hub corruption (type drift, nulls in required columns, null and invalid
 * tenant ids, deleted worker rows): after each, every filing accounts for every worker it had on
 * the clean hub (filed + rejected), every corrupted worker is among its rejects, and every file
 * passes its jurisdiction's own validator.
 */

let h: FilingHarness;
const t = (table: string) => sql.id(h.hubSchema, table);
const FILINGS: FilingItem[] = [
  { jurisdiction: 'gb-rti-fps', period: '2025-26-M09', tenant: 'northwind-health' },
  { jurisdiction: 'us-efw2', period: '2025', tenant: 'northwind-health' },
  { jurisdiction: 'us-efw2', period: '2025', tenant: 'globex-media' },
  { jurisdiction: 'ca-t4', period: '2025', tenant: 'initech-media' },
];

/** Each way of breaking one worker's data, as a real hub might hold it. */
const CORRUPTIONS: Record<string, (tenant: string, worker: string) => Promise<unknown>> = {
  birthDate: (tn, w) => sql`update ${t('workers')} set birth_date = '31/02/1990' where tenant_id = ${tn} and worker_id = ${w}`.execute(h.rt.db),
  hireDate: (tn, w) => sql`update ${t('workers')} set hire_date = '2024-02-30' where tenant_id = ${tn} and worker_id = ${w}`.execute(h.rt.db),
  amount: (tn, w) => sql`update ${t('payroll_results')} set net = 'n/a' where tenant_id = ${tn} and worker_id = ${w}`.execute(h.rt.db),
  nullAmount: (tn, w) => sql`update ${t('payroll_results')} set income_tax = null where tenant_id = ${tn} and worker_id = ${w}`.execute(h.rt.db),
  nullName: (tn, w) => sql`update ${t('workers')} set family_name = null where tenant_id = ${tn} and worker_id = ${w}`.execute(h.rt.db),
  workerTenant: (tn, w) => sql`update ${t('workers')} set tenant_id = null where tenant_id = ${tn} and worker_id = ${w}`.execute(h.rt.db),
  payslipTenant: (tn, w) => sql`update ${t('payroll_results')} set tenant_id = '.' where tenant_id = ${tn} and worker_id = ${w}`.execute(h.rt.db),
  contractTenant: (tn, w) => sql`update ${t('contracts')} set tenant_id = '' where tenant_id = ${tn} and worker_id = ${w}`.execute(h.rt.db),
  deleted: (tn, w) => sql`delete from ${t('workers')} where tenant_id = ${tn} and worker_id = ${w}`.execute(h.rt.db),
};

async function workersOf(item: FilingItem): Promise<string[]> {
  const j = jurisdiction(item.jurisdiction);
  const outcome = await extractFiling({
    hub: h.rt.connections.hub(),
    schema: h.hubSchema,
    entities: HUB_ENTITIES,
    jurisdiction: j,
    tenant: item.tenant,
    period: findPeriod(j, item.period)!,
    sink: async (_e, employees) => {
      const ids: string[] = [];
      for await (const e of employees) ids.push(e.workerId);
      return ids;
    },
  });
  return outcome.employer ? outcome.result : [];
}

const clean = new Map<FilingItem, string[]>();

beforeAll(async () => {
  h = await filingHarness({ worker: false });
  for (const f of FILINGS) clean.set(f, await workersOf(f));
  await sql`alter table ${t('workers')} drop constraint workers_pkey, alter column tenant_id drop not null, alter column family_name drop not null, alter column birth_date type text, alter column hire_date type text`.execute(
    h.rt.db,
  );
  await sql`alter table ${t('payroll_results')} drop constraint payroll_results_pkey, alter column income_tax drop not null, alter column net type text`.execute(
    h.rt.db,
  );
}, 90_000);

afterAll(async () => {
  await h?.close();
});

describe('filings on a randomly corrupted hub', () => {
  it('account for every worker, reject every corrupted one, and render files their validators pass', async () => {
    const rng = new Mulberry32(12);
    const corrupted = new Set<string>();
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rng.next() * list.length)]!;
    for (let round = 1; round <= 4; round++) {
      for (let i = 0; i < 3; i++) {
        const f = pick(FILINGS);
        const worker = pick(clean.get(f)!.filter((w) => !corrupted.has(`${f.tenant}/${w}`)));
        await CORRUPTIONS[pick(Object.keys(CORRUPTIONS))]!(f.tenant, worker);
        corrupted.add(`${f.tenant}/${worker}`);
      }
      for (const f of FILINGS) {
        const label = `round ${round}: ${f.jurisdiction} ${f.tenant}`;
        const result = await fileOne(h.env(100 + round), f);
        expect(result.status, label).toBe('delivered');
        const manifest = JSON.parse(await readFile(path.join(result.folder!, 'manifest.json'), 'utf8')) as {
          records: number;
          rejected: number;
          file: { name: string };
        };
        expect(manifest.records + manifest.rejected, label).toBe(clean.get(f)!.length);
        const rejected = new Set(
          (await readFile(path.join(result.folder!, 'rejects.jsonl'), 'utf8'))
            .split('\n')
            .filter(Boolean)
            .map((l) => (JSON.parse(l) as { record: string }).record),
        );
        for (const w of clean.get(f)!) if (corrupted.has(`${f.tenant}/${w}`)) expect(rejected.has(w), `${label}: ${w}`).toBe(true);
        expect((await jurisdiction(f.jurisdiction).validateFile(path.join(result.folder!, manifest.file.name))).violations, label).toEqual([]);
      }
    }
    expect(corrupted.size).toBe(12);
  });
});
