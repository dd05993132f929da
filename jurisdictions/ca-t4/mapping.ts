import { createHash } from 'node:crypto';
import { PermanentError } from '../../core/errors.ts';
import { decimal } from '../common.ts';
import type { Address, FilingEmployee, FilingEmployer, FilingPeriod, Money, Submitter } from '../types.ts';
import { fits, maxText } from './amounts.ts';
import { cut, fold, wrap } from './charset.ts';
import { alpha3, PROVINCES } from './codes.ts';
import { parsePhone } from './contact.ts';
import { compactBn } from '../../transforms/identifiers/bn.ts';
import { compactSin, SIN_NOT_PROVIDED } from '../../transforms/identifiers/sin.ts';
import { TOTAL_LINES } from './layout.ts';
import { EMPLOYER_EI_FACTOR_TENTHS, RATES, type YearRates } from './rates.ts';

/**
 * Canonical records to the shapes of CRA's T4 XML (element names as keys, in the order CRA's
 * specification lists them). Pure: no I/O, no clock. Input is expected to have passed the rules
 * in rules.ts; anything that still cannot be written throws a MappingError naming the field.
 */

export class MappingError extends PermanentError {
  constructor(
    readonly record: string,
    readonly field: string,
    readonly rule: string,
    message: string,
  ) {
    super(`${record}: ${field}: ${message}`);
  }
}

/** Lengths from CRA's T4 and T619 2026 specifications (the schema allows more, CRA's systems do not). */
export const LIMITS = {
  surname: 20,
  givenName: 12,
  addressLine: 30,
  city: 28,
  employerNameLine: 30,
  transmitterName: 35,
  transmitterContact: 35,
  summaryContact: 22,
  employeeNumber: 20,
} as const;

export interface CraAddress {
  readonly addr_l1_txt?: string;
  readonly addr_l2_txt?: string;
  readonly cty_nm?: string;
  readonly prov_cd?: string;
  readonly cntry_cd?: string;
  readonly pstl_cd?: string;
}

export interface T4Slip {
  readonly EMPE_NM: { readonly snm: string; readonly gvn_nm?: string };
  readonly EMPE_ADDR?: CraAddress;
  readonly sin: string;
  readonly empe_nbr: string;
  readonly bn: string;
  readonly cpp_qpp_xmpt_cd: '0';
  readonly ei_xmpt_cd: '0';
  readonly rpt_tcd: 'O';
  readonly empt_prov_cd: string;
  readonly T4_AMT: Readonly<Record<string, string>>;
}

/** A slip's figures in cents, as the boxes show them. */
export interface SlipAmounts {
  readonly employmentIncome: number;
  readonly cpp: number;
  readonly qpp: number;
  readonly ei: number;
  readonly incomeTax: number;
  readonly insurableEarnings: number;
  readonly pensionableEarnings: number;
}

export function ratesFor(period: FilingPeriod): YearRates | null {
  return RATES[period.taxYear] ?? null;
}

/**
 * Splits the hub's one employee social amount into the pension share and the EI share in the
 * ratio of their statutory rates, rounding the pension share half up; EI takes the remainder, so
 * the two always add up to the amount paid.
 */
export function splitSocial(total: number, pensionRate: number, eiRate: number): { pension: number; ei: number } {
  const weight = pensionRate + eiRate;
  const pension = Math.floor((2 * total * pensionRate + weight) / (2 * weight));
  return { pension, ei: total - pension };
}

/**
 * Province of employment (box 10). A worker living in Canada is taken to work in their home
 * province (employer-of-record workers work where they live); working from the US is 'US', from
 * anywhere else 'ZZ', as CRA asks. Null when a Canadian address has no region.
 */
export function provinceOfEmployment(employee: FilingEmployee): string | null {
  const country = employee.address.country.toUpperCase();
  if (country === 'US') return 'US';
  if (country !== 'CA') return 'ZZ';
  return employee.address.region;
}

export function slipAmounts(money: Money, province: string, rates: YearRates): SlipAmounts {
  const quebec = province === 'QC';
  const { pension, ei } = splitSocial(money.employeeSocial, quebec ? rates.qpp : rates.cpp, quebec ? rates.eiQuebec : rates.eiOutsideQuebec);
  return {
    employmentIncome: money.gross,
    cpp: quebec ? 0 : pension,
    qpp: quebec ? pension : 0,
    ei,
    incomeTax: money.incomeTax,
    insurableEarnings: Math.max(0, Math.min(money.gross, rates.maxInsurable)),
    pensionableEarnings: Math.max(0, Math.min(money.gross, rates.maxPensionable)),
  };
}

/** Slip box elements for the amounts; zero optional boxes are left out, as CRA wants. */
export function slipAmountElements(a: SlipAmounts): Record<string, number | null> {
  const optional = (cents: number) => (cents === 0 ? null : cents);
  return {
    empt_incamt: optional(a.employmentIncome),
    cpp_cntrb_amt: optional(a.cpp),
    qpp_cntrb_amt: optional(a.qpp),
    empe_eip_amt: optional(a.ei),
    itx_ddct_amt: optional(a.incomeTax),
    ei_insu_ern_amt: a.insurableEarnings,
    cpp_qpp_ern_amt: a.pensionableEarnings,
  };
}

/** Folded, cut text; throws when characters have no acceptable form. */
function text(record: string, field: string, value: string, kind: 'name' | 'address', max: number): string {
  const folded = fold(value, kind);
  if (folded.rejected.length) throw new MappingError(record, field, `${kind}.charset`, `has characters CRA does not accept: ${folded.rejected.join(' ')}`);
  return cut(folded.text, max);
}

export function craAddress(record: string, field: string, a: Address): CraAddress {
  const country = a.country.toUpperCase();
  const code = alpha3(country);
  if (!code) throw new MappingError(record, `${field}.country`, 'country.code', `country '${a.country}' has no known ISO alpha-3 code`);
  const line1 = text(record, `${field}.line1`, a.line1, 'address', LIMITS.addressLine);
  const line2 = a.line2 ? text(record, `${field}.line2`, a.line2, 'address', LIMITS.addressLine) : '';
  const city = text(record, `${field}.city`, a.city, 'address', LIMITS.city);
  const postcode = country === 'CA' ? a.postcode.replace(/\s/g, '').toUpperCase() : a.postcode.trim();
  const region = country === 'CA' || country === 'US' ? a.region : 'ZZ';
  if (country === 'CA' && region !== null && !PROVINCES.has(region))
    throw new MappingError(record, `${field}.region`, 'province.code', `'${region}' is not an upper-case province code`);
  const address: { -readonly [K in keyof CraAddress]: CraAddress[K] } = {};
  if (line1) address.addr_l1_txt = line1;
  if (line2) address.addr_l2_txt = line2;
  if (city) address.cty_nm = city;
  if (region) address.prov_cd = region;
  address.cntry_cd = code;
  if (postcode) address.pstl_cd = postcode;
  return address;
}

export function slipOf(employee: FilingEmployee, employer: FilingEmployer, rates: YearRates): { slip: T4Slip; amounts: SlipAmounts } {
  const record = employee.workerId;
  const province = provinceOfEmployment(employee);
  if (province === null || !(PROVINCES.has(province) || province === 'US' || province === 'ZZ')) {
    throw new MappingError(record, 'address.region', 'province.code', `no province of employment: found '${province ?? ''}'`);
  }
  const amounts = slipAmounts(employee.period, province, rates);
  const elements = slipAmountElements(amounts);
  const T4_AMT: Record<string, string> = {};
  for (const [element, cents] of Object.entries(elements)) {
    if (cents === null) continue;
    if (!fits(element, cents))
      throw new MappingError(record, `period (${element})`, 'amount.range', `${decimal(cents)} does not fit ${element} (0.00 to ${maxText(element)})`);
    T4_AMT[element] = decimal(cents);
  }
  const given = employee.givenName ? text(record, 'givenName', employee.givenName, 'name', LIMITS.givenName) : '';
  return {
    slip: {
      EMPE_NM: { snm: text(record, 'familyName', employee.familyName, 'name', LIMITS.surname), ...(given && { gvn_nm: given }) },
      EMPE_ADDR: craAddress(record, 'address', employee.address),
      sin: employee.nationalId === null ? SIN_NOT_PROVIDED : compactSin(employee.nationalId),
      empe_nbr: employee.workerId,
      bn: payrollAccount(employer),
      cpp_qpp_xmpt_cd: '0',
      ei_xmpt_cd: '0',
      rpt_tcd: 'O',
      empt_prov_cd: province,
      T4_AMT,
    },
    amounts,
  };
}

export function payrollAccount(employer: FilingEmployer): string {
  return compactBn(employer.payrollRef ?? '');
}

/** Where the transmitter's CRA account number comes from, in order of preference. */
export interface TransmitterAccount {
  readonly element: 'bn9' | 'bn15';
  readonly value: string;
  /** The canonical field it was taken from, for messages. */
  readonly source: 'submitter.authorityId' | 'submitter.taxId' | 'taxId';
}

/**
 * The transmitter account: the submitter's CRA id when it is a BN, else a Canadian submitter's
 * tax id, else the employer's own BN (an employer transmitting its own return).
 */
export function transmitterAccount(employer: FilingEmployer, submitter: Submitter): TransmitterAccount | null {
  const candidates: [TransmitterAccount['source'], string | null][] = [
    ['submitter.authorityId', submitter.authorityId],
    ['submitter.taxId', submitter.address.country.toUpperCase() === 'CA' ? submitter.taxId : null],
    ['taxId', employer.taxId],
  ];
  for (const [source, raw] of candidates) {
    if (!raw) continue;
    const value = compactBn(raw);
    if (/^\d{9}$/.test(value)) return { element: 'bn9', value, source };
    if (/^\d{9}[A-Z]{2}\d{4}$/.test(value)) return { element: 'bn15', value, source };
  }
  return null;
}

/** A Represent a Client RepID is 7 letters and digits. */
export function repId(submitter: Submitter): string | null {
  const v = submitter.authorityId?.trim().toUpperCase() ?? '';
  return /^[A-Z0-9]{7}$/.test(v) ? v : null;
}

const ALPHANUMERIC = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * sbmt_ref_id: 8 letters and digits derived from tenant, employer and period, so a re-render
 * gives the same reference. A test file starts with 'TEST' (T619 has no test indicator).
 */
export function submissionRef(employer: FilingEmployer, period: FilingPeriod, test: boolean): string {
  const digest = createHash('sha256').update(`${employer.tenantId}\u0000${employer.orgId}\u0000${period.id}`).digest();
  let ref = '';
  for (let i = 0; i < 8; i++) ref += ALPHANUMERIC[digest[i]! % 36];
  return test ? `TEST${ref.slice(0, 4)}` : ref;
}

function phone(record: string, field: string, value: string) {
  const p = parsePhone(value);
  if (!p) throw new MappingError(record, field, 'contact.phone', `'${value}' is not a North American phone number`);
  return p;
}

export function transmittal(employer: FilingEmployer, submitter: Submitter, period: FilingPeriod, test: boolean): Record<string, unknown> {
  const account = transmitterAccount(employer, submitter);
  if (!account) throw new MappingError('submitter', 'authorityId', 'transmitter.account', 'no business number to transmit under');
  const country = alpha3(submitter.address.country);
  if (!country) throw new MappingError('submitter', 'address.country', 'country.code', `country '${submitter.address.country}' has no known ISO alpha-3 code`);
  const rep = repId(submitter);
  const p = phone('submitter', 'contact.phone', submitter.contact.phone);
  return {
    TransmitterAccountNumber: { [account.element]: account.value },
    ...(rep && { TransmitterRepID: { RepID: rep } }),
    sbmt_ref_id: submissionRef(employer, period, test),
    summ_cnt: '1',
    lang_cd: 'E',
    TransmitterName: { l1_nm: text('submitter', 'name', submitter.name, 'address', LIMITS.transmitterName) },
    TransmitterCountryCode: country,
    CNTC: {
      cntc_nm: text('submitter', 'contact.name', submitter.contact.name, 'name', LIMITS.transmitterContact),
      cntc_area_cd: p.area,
      cntc_phn_nbr: p.number,
      ...(p.extension && { cntc_extn_nbr: p.extension }),
      cntc_email_area: submitter.contact.email,
    },
  };
}

/** Running sums over the slips written, in cents. */
export interface SlipSums {
  employmentIncome: number;
  cpp: number;
  ei: number;
  incomeTax: number;
}

export function emptySums(): SlipSums {
  return { employmentIncome: 0, cpp: 0, ei: 0, incomeTax: 0 };
}

export function addToSums(sums: SlipSums, a: SlipAmounts): void {
  sums.employmentIncome += a.employmentIncome;
  sums.cpp += a.cpp;
  sums.ei += a.ei;
  sums.incomeTax += a.incomeTax;
}

/**
 * The T4_TAMT figures, keyed by element. Employee lines are the slip sums; the employer's CPP
 * matches its employees' (box 16 only: QPP goes to Revenu Québec) and its EI is 1.4 times
 * theirs, rounded half up, as CRA's T4 Summary instructions compute them.
 */
export function summaryTotals(sums: SlipSums): Record<string, number> {
  return {
    tot_empt_incamt: sums.employmentIncome,
    tot_empe_cpp_amt: sums.cpp,
    tot_empe_eip_amt: sums.ei,
    tot_itx_ddct_amt: sums.incomeTax,
    tot_empr_cpp_amt: sums.cpp,
    tot_empr_eip_amt: Math.floor((sums.ei * EMPLOYER_EI_FACTOR_TENTHS + 5) / 10),
  };
}

/** The first summary total that no longer fits its element, or null: a T4 Summary cannot state it. */
export function overflowingTotal(sums: SlipSums): { element: string; cents: number } | null {
  for (const [element, cents] of Object.entries(summaryTotals(sums))) if (!fits(element, cents)) return { element, cents };
  return null;
}

/** RenderTotals.money from T4_TAMT figures: the names of TOTAL_LINES. */
export function moneyTotals(totals: Readonly<Record<string, number>>): Record<string, number> {
  const money: Record<string, number> = {};
  for (const line of TOTAL_LINES) if (totals[line.total] !== undefined) money[line.key] = totals[line.total]!;
  return money;
}

export function summaryOf(
  employer: FilingEmployer,
  submitter: Submitter,
  period: FilingPeriod,
  slips: number,
  totals: Readonly<Record<string, number>>,
): Record<string, unknown> {
  const name = wrap(fold(employer.legalName, 'address').text, LIMITS.employerNameLine, 2);
  if (!name?.[0])
    throw new MappingError(
      employer.orgId,
      'legalName',
      'employer.name',
      `'${employer.legalName}' does not fit two lines of ${LIMITS.employerNameLine} characters`,
    );
  const p = phone('submitter', 'contact.phone', submitter.contact.phone);
  const T4_TAMT: Record<string, string> = {};
  for (const line of TOTAL_LINES) {
    const cents = totals[line.total];
    if (cents === undefined) continue;
    if (!fits(line.total, cents))
      throw new MappingError(
        employer.orgId,
        line.total,
        'amount.range',
        `total ${decimal(cents)} does not fit ${line.total} (up to ${maxText(line.total)}): split the return`,
      );
    T4_TAMT[line.total] = decimal(cents);
  }
  return {
    bn: payrollAccount(employer),
    EMPR_NM: { l1_nm: name[0], ...(name[1] && { l2_nm: name[1] }) },
    EMPR_ADDR: craAddress(employer.orgId, 'address', employer.address),
    CNTC: {
      cntc_nm: text('submitter', 'contact.name', submitter.contact.name, 'name', LIMITS.summaryContact),
      cntc_area_cd: p.area,
      cntc_phn_nbr: p.number,
      ...(p.extension && { cntc_extn_nbr: p.extension }),
    },
    tx_yr: period.taxYear,
    slp_cnt: String(slips),
    rpt_tcd: 'O',
    T4_TAMT,
  };
}
