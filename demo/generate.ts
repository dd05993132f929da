import { bankAccount } from './bank.ts';
import { DAY_SECONDS, EPOCH_DAY, civil, dayNumber, daysInMonth, isoDate, isoTimestamp, weekday } from './calendar.ts';
import { COUNTRIES, CURRENCIES, FILING_COUNTRIES, PROFILES, nationalId, registration, type EmployingCountry, type Profile } from './countries.ts';
import { companyName, email, personName } from './names.ts';
import { address } from './places.ts';
import { int, pick, rngFor, weighted, type Rng } from './prng.ts';

/**
 * Rows of the demo hub, by field name. Two role keys stand for the tenant and updated-at
 * columns, whatever the entity configuration calls them.
 */
export const TENANT = '@tenant';
export const UPDATED_AT = '@updated_at';
export type Value = string | number | boolean | null;
export type Row = Record<string, Value>;

/** Independent random streams of one seed; a row's data depends only on (seed, stream, index). */
export const STREAM = { tenant: 1, core: 2, person: 3, contract: 4, payroll: 5, mutate: 6 } as const;

export const id = (prefix: string, n: number) => `${prefix}${String(n).padStart(9, '0')}`;
const EPOCH_SECONDS = EPOCH_DAY * DAY_SECONDS;

export interface OrgPlan {
  orgId: string;
  tenantId: string;
  country: EmployingCountry;
  weight: number;
}

export interface TenantPlan {
  tenantId: string;
  client: Row;
  orgs: OrgPlan[];
  orgRows: Row[];
  /** Global index of the tenant's first worker, and how many it has. */
  firstWorker: number;
  workers: number;
}

const COUNTRY_WEIGHTS: [EmployingCountry, number][] = [
  ['GB', 25],
  ['US', 25],
  ['CA', 12],
  ['FR', 10],
  ['NL', 10],
  ['ES', 8],
  ['DE', 10],
];

/** A timestamp in the year before the epoch. */
function pastTimestamp(rng: Rng): string {
  return isoTimestamp(EPOCH_SECONDS - int(rng, 3_600, 365 * DAY_SECONDS));
}

/** Tenants with their client and orgs, and how the workers are shared among them (largest remainder). */
export function planTenants(seed: number, tenants: number, workers: number): TenantPlan[] {
  const drafts = Array.from({ length: tenants }, (_, t) => {
    const rng = rngFor(seed, STREAM.tenant, t);
    const name = companyName(rng, t);
    const countries: EmployingCountry[] = [];
    const orgCount = weighted(rng, [
      [1, 5],
      [2, 3],
      [3, 2],
    ] as const);
    while (countries.length < orgCount) {
      const c = weighted(
        rng,
        COUNTRY_WEIGHTS.filter(([code]) => !countries.includes(code)),
      );
      countries.push(c);
    }
    return { t, rng, name, countries };
  });
  employInEveryFilingCountry(drafts);
  let orgNumber = 0;
  const plans = drafts.map(({ t, rng, name, countries }) => {
    const tenantId = name.toLowerCase().replace(/[^a-z0-9]+/g, '-');
    const orgs = countries.map((country) => ({ orgId: id('O', ++orgNumber), tenantId, country, weight: 0.2 + rng.next() }));
    const clientId = id('C', t + 1);
    const orgRows = orgs.map((o) => orgRow(rng, o, clientId, name));
    const home = PROFILES[countries[0]!];
    const client: Row = {
      client_id: clientId,
      [TENANT]: tenantId,
      name,
      billing_country: countries[0]!,
      billing_currency: home.currency,
      contact_email: rng.next() < 0.9 ? `payroll@${tenantId.replace(/-/g, '')}.example` : null,
      status: 'active',
      [UPDATED_AT]: pastTimestamp(rng),
    };
    return { tenantId, client, orgs, orgRows, firstWorker: 0, workers: 0, share: 0.2 + rng.next() * 1.8 };
  });
  const total = plans.reduce((s, p) => s + p.share, 0);
  const exact = plans.map((p) => (workers * p.share) / total);
  plans.forEach((p, i) => (p.workers = Math.floor(exact[i]!)));
  const order = plans.map((_, i) => i).sort((a, b) => exact[b]! - Math.floor(exact[b]!) - (exact[a]! - Math.floor(exact[a]!)) || a - b);
  for (let left = workers - plans.reduce((s, p) => s + p.workers, 0), k = 0; left > 0; left--, k++) plans[order[k]!]!.workers += 1;
  let first = 0;
  return plans.map(({ share: _, ...p }) => {
    const plan = { ...p, firstWorker: first };
    first += p.workers;
    return plan;
  });
}

/**
 * Every demo hub files in every filing jurisdiction: a filing country no tenant drew becomes one
 * more org of the tenant with the fewest (the first of them). A plan that has them all is kept
 * as drawn.
 */
function employInEveryFilingCountry(drafts: { countries: EmployingCountry[] }[]): void {
  for (const country of FILING_COUNTRIES) {
    if (drafts.some((d) => d.countries.includes(country))) continue;
    const smallest = drafts.reduce((a, b) => (b.countries.length < a.countries.length ? b : a));
    smallest.countries.push(country);
  }
}

const LEGAL_FORMS: Record<EmployingCountry, string> = { GB: 'Ltd', US: 'Inc.', CA: 'Inc.', FR: 'SAS', NL: 'B.V.', ES: 'S.L.', DE: 'GmbH' };

function orgRow(rng: Rng, org: OrgPlan, clientId: string, clientName: string): Row {
  const a = address(rng, org.country);
  return {
    org_id: org.orgId,
    [TENANT]: org.tenantId,
    client_id: clientId,
    legal_name: `${clientName} ${org.country === 'GB' ? 'UK' : org.country} ${LEGAL_FORMS[org.country]}`,
    country: org.country,
    ...registration(rng, org.country),
    address_line1: a.line1,
    city: a.city,
    postcode: a.postcode,
    employer_of_record: rng.next() < 0.8,
    [UPDATED_AT]: pastTimestamp(rng),
  };
}

/** What every table needs to know about a worker: cheap to draw, so each table's pass draws it again. */
export interface Core {
  tenantId: string;
  orgId: string;
  country: EmployingCountry;
  profile: Profile;
  birthDay: number;
  hireDay: number;
  terminationDay: number | null;
  status: 'active' | 'on_leave' | 'terminated';
  salary: number;
  hours: number;
  updatedAt: string;
}

const FIRST_HIRE_DAY = dayNumber(2012, 1, 1);
const FIRST_BIRTH_DAY = dayNumber(1960, 1, 1);
const LAST_BIRTH_DAY = dayNumber(2004, 12, 31);

export function workerCore(rng: Rng, orgs: OrgPlan[], hireDay?: number, updatedAt?: string): Core {
  const org = weighted(
    rng,
    orgs.map((o) => [o, o.weight] as const),
  );
  const profile = PROFILES[org.country];
  const birthDay = int(rng, FIRST_BIRTH_DAY, LAST_BIRTH_DAY);
  const recent = rng.next() < 0.05;
  const hire = hireDay ?? (recent ? int(rng, EPOCH_DAY - 100, EPOCH_DAY - 1) : int(rng, FIRST_HIRE_DAY, EPOCH_DAY - 120));
  const r = rng.next();
  const status = hireDay !== undefined || recent || r >= 0.12 ? 'active' : r < 0.08 ? 'terminated' : 'on_leave';
  const fullTime = rng.next() < 0.85;
  const hours = fullTime ? profile.hours : int(rng, 16, profile.hours - 8);
  const [low, high] = profile.salary;
  // Skewed towards the low end, as salaries are; part-timers are paid pro rata.
  const annual = low * (high / low) ** (rng.next() ** 1.6) * (hours / profile.hours);
  return {
    tenantId: org.tenantId,
    orgId: org.orgId,
    country: org.country,
    profile,
    birthDay,
    hireDay: hire,
    terminationDay: status === 'terminated' ? int(rng, hire + 30, EPOCH_DAY - 1) : null,
    status,
    salary: Math.round(annual / 100) * 100,
    hours,
    updatedAt: updatedAt ?? pastTimestamp(rng),
  };
}

export interface EdgeCases {
  longAddress?: boolean;
  nonLatinName?: boolean;
  noEmail?: boolean;
}

export function workerRow(rng: Rng, core: Core, workerId: string, edge: EdgeCases = {}): Row {
  const name = personName(rng, core.country, edge.nonLatinName);
  const national = nationalId(rng, core.country, core.birthDay, name.local);
  const home = address(rng, core.country, edge.longAddress || rng.next() < 0.01);
  const bank = bankAccount(rng, core.country);
  const mail = edge.noEmail || rng.next() < 0.1 ? null : email(rng, name.given, name.family);
  // A few records without one, as hubs have: filings that need it reject them.
  const r = rng.next();
  const gender = r < 0.002 ? null : r < 0.501 ? 'F' : 'M';
  return {
    worker_id: workerId,
    [TENANT]: core.tenantId,
    given_name: name.given.text,
    family_name: name.family.text,
    birth_date: isoDate(core.birthDay),
    gender,
    national_id: national.id,
    national_id_type: national.type,
    address_line1: home.line1,
    address_line2: edge.noEmail ? null : home.line2,
    city: home.city,
    region: home.region,
    postcode: home.postcode,
    country: core.country,
    email: mail,
    bank_account: bank.account,
    bank_code: bank.code,
    hire_date: isoDate(core.hireDay),
    termination_date: core.terminationDay === null ? null : isoDate(core.terminationDay),
    status: core.status,
    [UPDATED_AT]: core.updatedAt,
  };
}

const JOB_TITLES = [
  'Software Engineer',
  'Data Analyst',
  'Account Executive',
  'Customer Success Manager',
  'Product Designer',
  'Payroll Specialist',
  'HR Business Partner',
  'Site Reliability Engineer',
  'Marketing Manager',
  'Finance Controller',
  'Ingénieure logiciel',
  'Responsable RH',
  'Softwareentwicklerin',
  'Ingeniero de datos',
  'Teamleider klantenservice',
];

export function contractRow(rng: Rng, core: Core, contractId: string, workerId: string): Row {
  return {
    contract_id: contractId,
    [TENANT]: core.tenantId,
    worker_id: workerId,
    org_id: core.orgId,
    country: core.country,
    job_title: pick(rng, JOB_TITLES),
    salary: core.salary.toFixed(2),
    currency: core.profile.currency,
    pay_frequency: 'monthly',
    hours_per_week: core.hours,
    full_time: core.hours === core.profile.hours,
    start_date: isoDate(core.hireDay),
    end_date: core.terminationDay === null ? null : isoDate(core.terminationDay),
    [UPDATED_AT]: core.updatedAt,
  };
}

/** The three monthly periods before the epoch: [first day, last day]. */
export const PAY_PERIODS: [number, number][] = [3, 2, 1].map((back) => {
  const { year, month } = civil(EPOCH_DAY);
  const m = month - back;
  const y = m < 1 ? year - 1 : year;
  const mm = m < 1 ? m + 12 : m;
  const start = dayNumber(y, mm, 1);
  return [start, start + daysInMonth(y, mm) - 1];
});

function annualTax(p: Profile, salary: number): number {
  return Math.max(0, Math.min(salary, p.higherFrom) - p.allowance) * p.basic + Math.max(0, salary - p.higherFrom) * p.higher;
}

const money = (cents: number) => `${Math.trunc(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;

/** Payslips of the last three months for a worker still employed; the first month of a recent hire is pro rata. */
export function payrollRows(rng: Rng, core: Core, contractId: string, workerId: string): Row[] {
  if (core.status === 'terminated') return [];
  const rows: Row[] = [];
  const p = core.profile;
  const uk = core.country === 'GB';
  // Most UK employees have the standard code; a few a basic-rate-only or K code.
  const taxCode = uk
    ? weighted(rng, [
        ['1257L', 90],
        ['BR', 5],
        ['K475', 2],
        ['0T', 3],
      ] as const)
    : null;
  for (const [start, end] of PAY_PERIODS) {
    if (core.hireDay > end) continue;
    const fraction = (end - Math.max(start, core.hireDay) + 1) / (end - start + 1);
    const gross = Math.round((core.salary * 100 * fraction) / 12);
    const tax = Math.round((annualTax(p, core.salary) * 100 * fraction) / 12);
    const employee = Math.round(gross * p.employeeSocial);
    let payDay = end;
    while (weekday(payDay) > 4) payDay--;
    const approved = (payDay - 3) * DAY_SECONDS + int(rng, 9 * 3600, 17 * 3600);
    rows.push({
      worker_id: workerId,
      period_start: isoDate(start),
      [TENANT]: core.tenantId,
      contract_id: contractId,
      period_end: isoDate(end),
      pay_date: isoDate(payDay),
      currency: p.currency,
      gross: money(gross),
      income_tax: money(tax),
      employee_social: money(employee),
      employer_social: money(Math.round(gross * p.employerSocial)),
      net: money(gross - tax - employee),
      tax_code: taxCode,
      ni_category: uk ? 'A' : null,
      approved_at: isoTimestamp(approved),
      [UPDATED_AT]: isoTimestamp(approved + int(rng, 60, 3_600)),
    });
  }
  return rows;
}

export function referenceRows(): { countries: Row[]; currencies: Row[] } {
  const stamp = isoTimestamp(EPOCH_SECONDS - 200 * DAY_SECONDS);
  return {
    countries: COUNTRIES.map((c) => ({ ...c, [UPDATED_AT]: stamp })),
    currencies: CURRENCIES.map((c) => ({ ...c, [UPDATED_AT]: stamp })),
  };
}
