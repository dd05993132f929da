import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../core/config.ts';
import type { FilingEmployer } from '../../jurisdictions/types.ts';
import { DEMO_FILING_CONF } from '../../tasks/filing-cycle.ts';
import { listOutbox } from '../../tasks/filings/outbox.ts';
import { fileOne } from '../../tasks/filings/steps.ts';
import { configuredSubmitters, resolveSubmitter } from '../../tasks/filings/submitter.ts';
import { taskStates } from '../support.ts';
import { filingHarness, runCycle, type FilingHarness } from './support.ts';

/**
 * Who submits: settings from the run's conf, then the installation's file, then the employer.
 * Nothing is made up: a filing whose authority needs what no setting gives is refused, saying what.
 */

const employer: FilingEmployer = {
  tenantId: 'acme',
  orgId: 'O1',
  legalName: 'Acme Analytics US Inc.',
  country: 'US',
  taxId: '27-1234567',
  payrollRef: null,
  accountsOfficeRef: null,
  address: { line1: '350 Fifth Ave', line2: null, city: 'New York', region: null, postcode: '10118', country: 'US' },
};

let h: FilingHarness;

beforeAll(async () => {
  h = await filingHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('the submitter', () => {
  it('takes each field from the first source that sets it, the jurisdiction before "*", the employer last', () => {
    const conf = { 'us-efw2': { authorityId: 'RUN00001' }, '*': { contact: { name: 'Run Contact' } } };
    const file = { 'us-efw2': { authorityId: 'FILE0001', taxId: '12-3456789' }, '*': { contact: { phone: '212 555 0100', email: 'ops@eor.example' } } };
    expect(resolveSubmitter('us-efw2', employer, [conf, file])).toEqual({
      name: 'Acme Analytics US Inc.',
      authorityId: 'RUN00001',
      taxId: '12-3456789',
      address: employer.address,
      contact: { name: 'Run Contact', phone: '212 555 0100', email: 'ops@eor.example' },
    });
    expect(resolveSubmitter('ca-t4', employer, [conf, file])).toMatchObject({ authorityId: null, taxId: null, contact: { name: 'Run Contact' } });
  });

  it('reads the installation file named by HUBFLOW_FILING_SUBMITTERS and says what is wrong in it', async () => {
    const file = path.join(h.outbox, '..', 'submitters.json');
    await writeFile(
      file,
      JSON.stringify({ 'us-efw2': { authorityId: 'EORPAY01', contact: { name: 'Payroll Ops', phone: '+1 212 555 0100', email: 'ops@eor.example' } } }),
    );
    const config = { ...h.rt.config, HUBFLOW_FILING_SUBMITTERS: file } as Config;
    expect(configuredSubmitters(config)['us-efw2']?.authorityId).toBe('EORPAY01');
    await writeFile(file, JSON.stringify({ 'us-efw2': { authorityID: 'typo' } }));
    expect(() => configuredSubmitters(config)).toThrow(/HUBFLOW_FILING_SUBMITTERS .*invalid submitter settings: us-efw2: Unrecognized key/);
    expect(configuredSubmitters(h.rt.config)).toEqual({});
  });

  it('refuses an EFW2 filing with no BSO user id or contact configured, naming each, and files an FPS as the employer', async () => {
    const env = { ...h.env(7001), submitters: [] };
    const refused = fileOne(env, { jurisdiction: 'us-efw2', period: '2025', tenant: 'globex-media' });
    await expect(refused).rejects.toThrow(
      /the employer or submitter breaks us-efw2 rules, so nothing is filed: submitter authorityId \(bso\.userId\).*submitter contact\.phone \(contact\.phone\)/,
    );
    const fps = await fileOne(env, { jurisdiction: 'gb-rti-fps', period: '2025-26-M09', tenant: 'northwind-health' });
    expect(fps.status).toBe('delivered');
    const xml = await readFile(path.join(fps.folder!, 'FPS-2025-26-M09.xml'), 'utf8');
    expect(xml).toContain('<Sender>Employer</Sender>');
    expect((await listOutbox(h.outbox, { jurisdiction: 'us-efw2' })).filings).toEqual([]);
  });

  it('makes every demo filing with the demo conf, as test submissions', async () => {
    const run = await runCycle(h, '2026-03-01', DEMO_FILING_CONF);
    expect(run.state, JSON.stringify(await taskStates(h.rt, run.id))).toBe('success');
    const { filings } = await listOutbox(h.outbox);
    expect(filings.map((f) => `${f.manifest.jurisdiction} ${f.manifest.period.id} ${f.manifest.tenant} ${f.manifest.test}`)).toEqual([
      'ca-t4 2025 initech-media true',
      'gb-rti-fps 2025-26-M09 northwind-health true',
      'us-efw2 2025 globex-media true',
      'us-efw2 2025 northwind-health true',
    ]);
    const fps = filings.find((f) => f.manifest.jurisdiction === 'gb-rti-fps')!;
    expect(await readFile(path.join(fps.folder, fps.manifest.file.name), 'utf8')).toContain('<Class>HMRC-PAYE-RTI-FPS-TIL</Class>');
    const w2 = filings.find((f) => f.manifest.jurisdiction === 'us-efw2')!;
    expect(w2.manifest.submitter.authorityId).toBe('HFDEMO01');
  });
});
