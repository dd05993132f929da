import type { Writable } from 'node:stream';

/**
 * The contract every jurisdiction plugin fulfils. A plugin lives in `jurisdictions/<code>/` and
 * is added to the registry in `jurisdictions/index.ts`; nothing else changes to add one.
 *
 * The filing pipeline reads the hub once per (jurisdiction, tenant, period) from one snapshot,
 * turns rows into the canonical records below, and hands them to the plugin:
 *   validateEmployer -> validate each employee -> render the valid ones -> verify the file.
 * Money is always an integer count of minor units (pence, cents): sums stay exact.
 */

/** One filing period of a jurisdiction's calendar. */
export interface FilingPeriod {
  /** Stable, path-safe id, unique within the jurisdiction: '2026-27-M08', '2025'. */
  readonly id: string;
  /** First and last day covered, inclusive (YYYY-MM-DD). */
  readonly start: string;
  readonly end: string;
  /** The date payments are made on (FPS: on or before payday); null for annual returns. */
  readonly payDate: string | null;
  /** The instant the authority must have the file by (UTC). */
  readonly deadline: Date;
  /** Tax year the period belongs to, as the authority writes it ('2026-27', '2025'). */
  readonly taxYear: string;
  /** First day of that tax year (YYYY-MM-DD): year-to-date figures count from here. */
  readonly yearStart: string;
}

export interface Address {
  readonly line1: string;
  readonly line2: string | null;
  readonly city: string;
  readonly region: string | null;
  readonly postcode: string;
  /** ISO 3166-1 alpha-2. */
  readonly country: string;
}

/** The legal entity that files: one org of one tenant. */
export interface FilingEmployer {
  readonly tenantId: string;
  readonly orgId: string;
  readonly legalName: string;
  readonly country: string;
  /** The hub's `tax_id`: US EIN, CA business number (BN9), UK Corporation Tax UTR. */
  readonly taxId: string;
  /** The hub's `payroll_ref`: UK PAYE reference '123/AB45678', CA payroll account 'BN9RP0001'. */
  readonly payrollRef: string | null;
  /** UK Accounts Office reference. */
  readonly accountsOfficeRef: string | null;
  readonly address: Address;
}

/**
 * Who transmits the file (the EOR platform, or the employer itself) and whom the authority
 * contacts about it. From configuration; the pipeline defaults it to the employer.
 */
export interface Submitter {
  readonly name: string;
  /** Submitter's own id with the authority: SSA BSO user id, CRA transmitter number, HMRC sender id. */
  readonly authorityId: string | null;
  /** Submitter's tax id (US EIN for the EFW2 RA record). */
  readonly taxId: string | null;
  readonly address: Address;
  readonly contact: { readonly name: string; readonly phone: string; readonly email: string };
}

export interface Money {
  readonly gross: number;
  readonly incomeTax: number;
  readonly employeeSocial: number;
  readonly employerSocial: number;
  readonly net: number;
}

/** One worker's figures for one employer and period, as the hub holds them. */
export interface FilingEmployee {
  readonly tenantId: string;
  readonly orgId: string;
  readonly workerId: string;
  readonly contractId: string;
  readonly givenName: string;
  readonly familyName: string;
  readonly birthDate: string;
  /** 'F' | 'M' as the hub holds it, or null when unknown. */
  readonly gender: string | null;
  /** NINO, SSN, SIN... as stored in the hub (may be malformed: validation says so). */
  readonly nationalId: string | null;
  readonly nationalIdType: string;
  readonly address: Address;
  readonly hireDate: string;
  readonly terminationDate: string | null;
  readonly payFrequency: string;
  /** UK: PAYE tax code and NI category letter of the latest payment in the period. */
  readonly taxCode: string | null;
  readonly niCategory: string | null;
  /** Latest pay date within the period, or null when nothing was paid in it. */
  readonly payDate: string | null;
  /** Minor units paid within the period. */
  readonly period: Money;
  /** Minor units paid in the tax year up to and including the period. */
  readonly yearToDate: Money;
}

/** A record-level rule broken: what the rejects file and `filings validate` print. */
export interface Violation {
  /** The record: a worker id for canonical records; 'line 12' / 'record 3 (RW)' / an XPath in a file. */
  readonly record: string;
  readonly field: string;
  /** Short stable rule id: 'nino.format', 'ssn.area', 'efw2.length', 'xsd'. */
  readonly rule: string;
  readonly message: string;
}

/** Totals a renderer wrote, in minor units, as its file's own totals records state them. */
export interface RenderTotals {
  readonly records: number;
  /** Named money totals, e.g. { wages: 123400, federalIncomeTax: 2300 }. */
  readonly money: Readonly<Record<string, number>>;
}

export interface RenderInput {
  readonly employer: FilingEmployer;
  readonly submitter: Submitter;
  readonly period: FilingPeriod;
  /** Stable per (jurisdiction, tenant, period): re-rendering gives byte-identical output. */
  readonly generatedAt: Date;
  /** True for a test submission (FPS test-in-live class, EFW2 test indicator, T4 test data type). */
  readonly test: boolean;
}

export interface Jurisdiction {
  /** Folder name and CLI code: 'gb-rti-fps'. */
  readonly code: string;
  readonly title: string;
  /** Employers in this country file here. */
  readonly country: string;
  /** The official specification the plugin follows (also in the folder's README). */
  readonly spec: { readonly name: string; readonly version: string; readonly url: string };
  /**
   * The money totals the file states that are plain sums of one canonical `period` figure over
   * the records rendered (EFW2 `wages` = sum of `gross`). The pipeline checks each against its own
   * sums of the records it handed to `render`, so no file can state a total its records do not
   * add up to. Totals derived otherwise (capped, split, employer shares) are left out.
   */
  readonly recordTotals: Readonly<Record<string, keyof Money>>;
  /** File name within `<outbox>/<code>/<period>/<tenant>/`. */
  fileName(period: FilingPeriod): string;
  /** The calendar: every period whose end falls within [from, to), in order. */
  periods(from: Date, to: Date): FilingPeriod[];
  /** Employer-level rules (reference formats, names); any violation stops the whole filing. */
  validateEmployer(employer: FilingEmployer, submitter: Submitter): Violation[];
  /** Record-level rules; an employee with violations goes to rejects, the others are rendered. */
  validate(employee: FilingEmployee, period: FilingPeriod): Violation[];
  /**
   * Writes the file to `out`, streaming: memory stays flat whatever the number of records.
   * Records arrive already validated. Returns the totals the file states.
   */
  render(input: RenderInput, employees: AsyncIterable<FilingEmployee>, out: Writable): Promise<RenderTotals>;
  /**
   * Checks a file of this format (one hubflow did not produce too) against the authority's
   * structure and rules; returns the totals it states and every violation found.
   */
  validateFile(path: string): Promise<{ totals: RenderTotals; violations: Violation[] }>;
}
