import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JURISDICTIONS, jurisdiction } from '../../jurisdictions/index.ts';
import { FILING_COUNTRIES } from '../../demo/countries.ts';
import { planTenants } from '../../demo/generate.ts';
import { DEMO_HUB } from '../../demo/seed.ts';
import { DEMO_FILING_CONF } from '../../tasks/filing-cycle.ts';
import { listOutbox, REJECTS } from '../../tasks/filings/outbox.ts';
import { taskStates } from '../support.ts';
import { filingHarness, runCycle, type FilingHarness } from '../filings/support.ts';

/**
 * The demo hub `hubflow demo` seeds files in all three jurisdictions, and every file it renders
 * passes its own jurisdiction's file validator, with no record held back for an identifier.
 */

const IDENTIFIER_RULE = /^(nino|ssn|sin|ein|bn|payeref|aoref|utr|UTR)\./;

describe('the demo hub plans an employer in every filing country', () => {
  it('names the countries the jurisdictions file for', () => {
    expect([...FILING_COUNTRIES].sort()).toEqual(JURISDICTIONS.map((j) => j.country).sort());
  });

  it('whatever the seed and number of tenants, and leaves a plan that has them all as drawn', () => {
    for (let seed = 0; seed < 200; seed++) {
      for (const tenants of [1, 2, 3, 7]) {
        const countries = new Set(planTenants(seed, tenants, 100).flatMap((p) => p.orgs.map((o) => o.country)));
        for (const c of FILING_COUNTRIES) expect(countries.has(c), `seed ${seed}, ${tenants} tenants: ${c}`).toBe(true);
      }
    }
    // Seed 3's three tenants drew all three countries themselves: their orgs are kept as drawn.
    expect(planTenants(3, 3, 400).map((p) => `${p.tenantId}:${p.orgs.map((o) => o.country).join('/')}`)).toEqual([
      'northwind-health:GB/US/NL',
      'globex-media:US',
      'initech-media:CA/FR',
    ]);
  });
});

describe('the demo filing cycle', () => {
  let h: FilingHarness;
  let run: { id: number; state: string };

  beforeAll(async () => {
    // The demo's own hub, with fewer workers.
    h = await filingHarness({ seed: { ...DEMO_HUB, workers: 600 } });
    run = await runCycle(h, '2026-03-01', DEMO_FILING_CONF);
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  it('renders an FPS, an EFW2 and a T4 file, each passing its jurisdiction validateFile', async () => {
    expect(run.state, JSON.stringify(await taskStates(h.rt, run.id))).toBe('success');
    const { filings } = await listOutbox(h.outbox);
    expect([...new Set(filings.map((f) => f.manifest.jurisdiction))].sort()).toEqual(['ca-t4', 'gb-rti-fps', 'us-efw2']);
    for (const f of filings) {
      const { violations } = await jurisdiction(f.manifest.jurisdiction).validateFile(path.join(f.folder, f.manifest.file.name));
      expect(violations, `${f.manifest.jurisdiction} ${f.manifest.tenant}`).toEqual([]);
      expect(f.manifest.records, `${f.manifest.jurisdiction} ${f.manifest.tenant}`).toBeGreaterThan(0);
    }
  });

  it('holds back no record for an identifier its jurisdiction rejects', async () => {
    const { filings } = await listOutbox(h.outbox);
    for (const f of filings) {
      const text = await readFile(path.join(f.folder, REJECTS), 'utf8').catch(() => '');
      const rules = text
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { rule: string }).rule);
      expect(
        rules.filter((r) => IDENTIFIER_RULE.test(r)),
        `${f.manifest.jurisdiction} ${f.manifest.tenant}`,
      ).toEqual([]);
    }
  });
});
