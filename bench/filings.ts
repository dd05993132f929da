import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { JURISDICTIONS, jurisdiction } from '../jurisdictions/index.ts';
import { ChunkWriter } from '../jurisdictions/common.ts';
import type { FilingEmployee, FilingEmployer, FilingPeriod, Jurisdiction, Money, Submitter } from '../jurisdictions/types.ts';
import { EMPLOYING, registration, type EmployingCountry } from '../demo/countries.ts';
import { id, payrollRows, workerCore, workerRow } from '../demo/generate.ts';
import { address } from '../demo/places.ts';
import { rngFor } from '../demo/prng.ts';
import { minorUnits } from '../tasks/filings/money.ts';
import { findPeriod } from '../tasks/filings/period.ts';
import { DEMO_SUBMITTERS, resolveSubmitter } from '../tasks/filings/submitter.ts';

/**
 * `npm run bench -- filings`: records per second and peak RSS of rendering each jurisdiction's
 * file, to disk, for 100,000 and 1,000,000 synthetic canonical records. Each (jurisdiction,
 * size) runs in a fresh child process, so its peak RSS is its own. The baseline, measured in the
 * same run, writes the same records as JSON lines: the cost of producing and storing them at all,
 * so `vsBaseline` is what the format itself costs and survives a noisy machine.
 *
 * Records are drawn from a pool of 1,000 the demo hub's generator makes (accented names,
 * addresses of the country, national ids valid by its rules), each passing the jurisdiction's
 * record rules, then repeated with their own worker and contract ids. Money is one month's pay:
 * a whole year for 1,000,000 employees overflows the T4 Summary's 9-digit CPP and EI totals,
 * which CRA answers with several returns (not something a renderer benchmark should model).
 */

const SIZES = [100_000, 1_000_000];
const POOL = 1_000;
const TARGETS: Record<string, number> = { 'us-efw2': 100_000, 'gb-rti-fps': 50_000, 'ca-t4': 50_000 };
const RSS_LIMIT_MB = 200;

const PERIODS: Record<string, string> = { 'us-efw2': '2025', 'ca-t4': '2025', 'gb-rti-fps': '2025-26-M09' };

interface CaseResult {
  case: string;
  records: number;
  seconds: number;
  recordsPerSecond: number;
  bytes: number;
  peakRssMB: number;
}

const TENANT = 'bench-tenant';
const ORG = 'O000000001';

function employerOf(country: EmployingCountry): FilingEmployer {
  const rng = rngFor(7, 1, EMPLOYING.indexOf(country));
  const reg = registration(rng, country);
  const a = address(rng, country);
  return {
    tenantId: TENANT,
    orgId: ORG,
    legalName: `Northwind Analytics ${country === 'GB' ? 'UK Ltd' : 'Inc.'}`,
    country,
    taxId: reg.tax_id,
    payrollRef: reg.payroll_ref,
    accountsOfficeRef: reg.accounts_office_ref,
    address: { line1: a.line1, line2: null, city: a.city, region: null, postcode: a.postcode, country },
  };
}

const money = (row: Record<string, unknown>): Money => ({
  gross: minorUnits(String(row.gross), 'gross'),
  incomeTax: minorUnits(String(row.income_tax), 'income_tax'),
  employeeSocial: minorUnits(String(row.employee_social), 'employee_social'),
  employerSocial: minorUnits(String(row.employer_social), 'employer_social'),
  net: minorUnits(String(row.net), 'net'),
});

const add = (a: Money, b: Money): Money => ({
  gross: a.gross + b.gross,
  incomeTax: a.incomeTax + b.incomeTax,
  employeeSocial: a.employeeSocial + b.employeeSocial,
  employerSocial: a.employerSocial + b.employerSocial,
  net: a.net + b.net,
});

/** Workers as the hub would hold them, with December's payslip as the period and Oct-Dec as the year to date. */
function pool(j: Jurisdiction, period: FilingPeriod): FilingEmployee[] {
  const country = j.country as EmployingCountry;
  const orgs = [{ orgId: ORG, tenantId: TENANT, country, weight: 1 }];
  const out: FilingEmployee[] = [];
  for (let i = 0; out.length < POOL; i++) {
    if (i > POOL * 20) throw new Error(`${j.code}: the generator gives too few records that pass the rules`);
    const core = workerCore(rngFor(7, 2, i), orgs);
    const w = workerRow(rngFor(7, 3, i), core, id('W', i + 1));
    const slips = payrollRows(rngFor(7, 5, i), core, id('K', i + 1), id('W', i + 1));
    const last = slips.at(-1);
    if (last?.pay_date !== '2025-12-31') continue;
    const e: FilingEmployee = {
      tenantId: TENANT,
      orgId: ORG,
      workerId: String(w.worker_id),
      contractId: id('K', i + 1),
      givenName: String(w.given_name),
      familyName: String(w.family_name),
      birthDate: String(w.birth_date),
      gender: (w.gender as string | null) ?? null,
      nationalId: String(w.national_id),
      nationalIdType: String(w.national_id_type),
      address: {
        line1: String(w.address_line1),
        line2: (w.address_line2 as string | null) ?? null,
        city: String(w.city),
        region: (w.region as string | null) ?? null,
        postcode: String(w.postcode),
        country: String(w.country),
      },
      hireDate: String(w.hire_date),
      terminationDate: (w.termination_date as string | null) ?? null,
      payFrequency: 'monthly',
      taxCode: (last.tax_code as string | null) ?? null,
      niCategory: (last.ni_category as string | null) ?? null,
      payDate: String(last.pay_date),
      period: money(last),
      yearToDate: slips.map(money).reduce(add),
    };
    if (!j.validate(e, period).length) out.push(e);
  }
  return out;
}

async function* records(base: FilingEmployee[], n: number): AsyncGenerator<FilingEmployee> {
  for (let i = 0; i < n; i++) {
    const e = base[i % base.length]!;
    yield { ...e, workerId: id('W', i + 1), contractId: id('K', i + 1) };
  }
}

/** One case, in this process: render (or, for the baseline, JSON-encode) n records to a file. */
async function runCase(code: string, n: number): Promise<CaseResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hubflow-bench-filings-'));
  try {
    const j = jurisdiction(code === 'baseline' ? 'us-efw2' : code);
    const period = findPeriod(j, PERIODS[j.code]!)!;
    const employer = employerOf(j.country as EmployingCountry);
    const submitter: Submitter = resolveSubmitter(j.code, employer, [DEMO_SUBMITTERS]);
    const base = pool(j, period);
    const file = path.join(dir, code === 'baseline' ? 'records.jsonl' : j.fileName(period));
    const out = createWriteStream(file, { highWaterMark: 1 << 20 });
    const started = performance.now();
    let written: number;
    if (code === 'baseline') {
      const w = new ChunkWriter(out);
      written = 0;
      for await (const e of records(base, n)) {
        await w.write(`${JSON.stringify(e)}\n`);
        written++;
      }
      await w.flush();
    } else {
      const totals = await j.render({ employer, submitter, period, generatedAt: new Date('2026-01-01T00:00:00Z'), test: true }, records(base, n), out);
      written = totals.records;
    }
    out.end();
    await finished(out);
    const seconds = (performance.now() - started) / 1000;
    if (written !== n) throw new Error(`${code}: ${written} records written, ${n} expected`);
    return {
      case: code,
      records: n,
      seconds: round(seconds),
      recordsPerSecond: Math.round(n / seconds),
      bytes: (await stat(file)).size,
      peakRssMB: round(process.resourceUsage().maxRSS / 1024, 1),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const round = (x: number, digits = 2) => Number(x.toFixed(digits));
const run = promisify(execFile);
const THIS_FILE = fileURLToPath(import.meta.url);

async function inChild(code: string, n: number): Promise<CaseResult> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', THIS_FILE, '--case', code, String(n)], {
    cwd: path.dirname(path.dirname(THIS_FILE)),
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as CaseResult;
}

export async function runFilingsBench(): Promise<unknown> {
  const codes = ['baseline', ...JURISDICTIONS.map((j) => j.code)];
  const results: (CaseResult & { vsBaseline?: number; target?: number; meetsTarget?: boolean; underRssLimit?: boolean })[] = [];
  for (const n of SIZES) {
    let baseline = 0;
    for (const code of codes) {
      const r = await inChild(code, n);
      if (code === 'baseline') {
        baseline = r.recordsPerSecond;
        results.push(r);
        continue;
      }
      results.push({
        ...r,
        vsBaseline: round(r.recordsPerSecond / baseline),
        target: TARGETS[code],
        meetsTarget: r.recordsPerSecond >= TARGETS[code]!,
        underRssLimit: r.peakRssMB < RSS_LIMIT_MB,
      });
    }
  }
  return { node: process.version, cpus: os.cpus().length, rssLimitMB: RSS_LIMIT_MB, cases: results };
}

if (process.argv[1] === THIS_FILE && process.argv[2] === '--case') {
  const result = await runCase(process.argv[3]!, Number(process.argv[4]));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
