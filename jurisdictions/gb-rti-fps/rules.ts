import { decimal } from '../common.ts';
import { dayNumber, isIsoDate, isoDay } from './calendar.ts';
import { ninoProblem } from '../../transforms/identifiers/nino.ts';
import type { FpsAddress, FpsEmployee, FpsEmployment, FpsField, FpsNiLetter, Issue } from './record.ts';
import { taxCodeProblem } from './tax-code.ts';
import type { TaxYearSpec } from './tax-years.ts';
import { CHARSET_B, CHARSET_D, CHARSET_G, nonLatinLetters, outsideCharset, quote } from './text.ts';

/**
 * Record-level rules on FPS employee records: the schema's field rules that a record built in
 * code could break, the NINO rules of NIM39110, and HMRC's business rules (the schematron shipped
 * with the schema; rule ids are HMRC's, messages cite HMRC's error codes) for the fields an FPS
 * from the hub carries.
 */

export interface RuleContext {
  readonly year: TaxYearSpec;
  /**
   * The date HMRC's "today" rules are judged against (birth date not in the future, leaving
   * date at most 30 days ahead). The period's last day, so a re-check gives the same answer.
   */
  readonly today: string;
}

const PAY_FREQUENCIES = new Set(['W1', 'W2', 'W4', 'M1', 'M3', 'M6', 'MA', 'IO', 'IR']);
const NI_LETTERS = new Set('ABCDEFGHIJKLMNPQRSTVWXYZ');
/** Reduced-rate letters for married women and widows (rules NILETTER.0 and NILETTER.3). */
const REDUCED_RATE = new Set('BETI');
/** Freeport and investment-zone letters: they need the workplace postcode (NILETTER.2). */
const SPECIAL_SITE = new Set('FILSNEDK');
/** Letters with no employee contributions (EMPLOYEESCONTRIBUTIONSONALLEARNINGS.1). */
const NO_EMPLOYEE_NIC = new Set('XCKSW');
/** The schema's bounds, in pence: 999,999,999.99 for most figures, ten times that for tax. */
const MAX = 99_999_999_999;
const MAX_TAX = 999_999_999_999;

const NI = {
  grossInPd: 'Employment/NIlettersAndValues/GrossEarningsForNICsInPd',
  grossYtd: 'Employment/NIlettersAndValues/GrossEarningsForNICsYTD',
  atLel: 'Employment/NIlettersAndValues/AtLELYTD',
  lelToPt: 'Employment/NIlettersAndValues/LELtoPTYTD',
  ptToUel: 'Employment/NIlettersAndValues/PTtoUELYTD',
  employerInPd: 'Employment/NIlettersAndValues/TotalEmpNICInPd',
  employerYtd: 'Employment/NIlettersAndValues/TotalEmpNICYTD',
  employeeInPd: 'Employment/NIlettersAndValues/EmpeeContribnsInPd',
  employeeYtd: 'Employment/NIlettersAndValues/EmpeeContribnsYTD',
} as const satisfies Record<string, FpsField>;

type Add = (field: FpsField, rule: string, message: string) => void;

export function employeeIssues(r: FpsEmployee, ctx: RuleContext): Issue[] {
  const issues: Issue[] = [];
  const add: Add = (field, rule, message) => issues.push({ field, rule, message });

  if (r.nino !== null) {
    // An unknown suffix is sent as a space, as the FPS schema allows.
    const p = ninoProblem(r.nino, { blankSuffix: true });
    if (p) add('EmployeeDetails/NINO', p.rule, p.message);
  } else if ((r.address?.lines.length ?? 0) < 2) {
    add(
      'EmployeeDetails/Address/Line',
      'EMPLOYEE.0',
      `no NINO is given, so HMRC needs at least two address lines; found ${r.address?.lines.length ?? 0} (error 7823)`,
    );
  }

  if (!r.name.fore.length && !r.name.initials) add('EmployeeDetails/Name/Fore', 'EMPLOYEE.1', 'neither a forename nor initials is given (error 7824)');
  for (const fore of r.name.fore) nameRules(add, 'EmployeeDetails/Name/Fore', 'forename', fore);
  nameRules(add, 'EmployeeDetails/Name/Sur', 'surname', r.name.sur);
  if (r.address) addressRules(add, r.address);

  birthDateRules(add, r, ctx);
  if (r.gender !== 'M' && r.gender !== 'F')
    add('EmployeeDetails/Gender', 'gender.value', `gender ${quote(r.gender)} is not M or F, the only values the FPS takes`);
  for (const employment of r.employments) employmentRules(add, r, employment, ctx);
  return issues;
}

function nameRules(add: Add, field: FpsField, what: string, value: string): void {
  if (!value) return add(field, 'name.missing', `the ${what} is empty`);
  const script = nonLatinLetters(value);
  if (script.length) {
    return add(
      field,
      'name.script',
      `${what} ${quote(value)} is written in letters the FPS cannot carry (${script.join(' ')}); HMRC takes A-Z only, so record the name in Latin letters`,
    );
  }
  const bad = outsideCharset(value, CHARSET_D);
  if (bad.length)
    return add(
      field,
      'name.charset',
      `${what} ${quote(value)} has characters the FPS does not allow in names: ${bad.map(quote).join(' ')} (letters, space, hyphen and apostrophe only)`,
    );
  if (!/^[A-Za-z]/.test(value)) add(field, 'name.start', `${what} ${quote(value)} does not start with a letter`);
  if (value.length > 35) add(field, 'name.length', `${what} ${quote(value)} has ${value.length} characters; the FPS takes at most 35`);
}

function addressRules(add: Add, a: FpsAddress): void {
  const F = 'EmployeeDetails/Address/Line';
  if (a.lines.length > 4) add(F, 'address.lines', `the address needs ${a.lines.length} lines of at most 35 characters; the FPS takes at most 4`);
  for (const line of a.lines) {
    const script = nonLatinLetters(line);
    const bad = outsideCharset(line, CHARSET_G);
    if (script.length) add(F, 'address.script', `address line ${quote(line)} is written in letters the FPS cannot carry (${script.join(' ')})`);
    else if (bad.length) add(F, 'address.charset', `address line ${quote(line)} has characters the FPS does not allow: ${bad.map(quote).join(' ')}`);
    else if (!/^[A-Za-z0-9]/.test(line)) add(F, 'address.start', `address line ${quote(line)} does not start with a letter or digit`);
    if (line.length > 35)
      add(F, 'address.length', `address line ${quote(line.slice(0, 40))}... has ${line.length} characters; the FPS takes at most 35 per line`);
  }
  if (!a.lines.length && !a.ukPostcode) add(F, 'ADDRESS.FPS.0', 'the address has neither a line nor a postcode (error 7932)');
  if (a.ukPostcode !== null && (a.ukPostcode.length > 10 || a.ukPostcode.startsWith(' ') || outsideCharset(a.ukPostcode, CHARSET_B).length)) {
    add('EmployeeDetails/Address/UKPostcode', 'postcode.format', `postcode ${quote(a.ukPostcode)} is not 1-10 letters, digits and spaces`);
  }
  if (a.foreignCountry !== null) {
    if (a.lines.length < 2)
      add('EmployeeDetails/Address/ForeignCountry', 'FOREIGNCOUNTRY.0', `a foreign address needs at least two lines; found ${a.lines.length} (error 7825)`);
    if (!a.foreignCountry || a.foreignCountry.length > 35 || !/^[A-Za-z]/.test(a.foreignCountry) || outsideCharset(a.foreignCountry, CHARSET_G).length) {
      add('EmployeeDetails/Address/ForeignCountry', 'country.format', `country ${quote(a.foreignCountry)} is not 1-35 characters starting with a letter`);
    }
  }
}

function birthDateRules(add: Add, r: FpsEmployee, ctx: RuleContext): void {
  const F = 'EmployeeDetails/BirthDate';
  if (!r.birthDate) {
    if (!r.employments.some((e) => e.paymentToNonIndividual))
      add(F, 'EMPLOYEE.FPS.2', 'the date of birth is missing; it is mandatory unless the payment is to a non-individual (error 7907)');
    return;
  }
  if (!isIsoDate(r.birthDate)) return add(F, 'birthdate.format', `date of birth ${quote(r.birthDate)} is not a date written YYYY-MM-DD`);
  if (r.birthDate > ctx.today) add(F, 'BirthDateType.1', `date of birth ${r.birthDate} is after ${ctx.today} (error 5001)`);
  const oldest = `${Number(ctx.today.slice(0, 4)) - 130}${ctx.today.slice(4)}`;
  if (r.birthDate <= oldest) add(F, 'DATEOFBIRTH.0', `date of birth ${r.birthDate} is more than 130 years before ${ctx.today} (error 7826)`);
}

function employmentRules(add: Add, r: FpsEmployee, e: FpsEmployment, ctx: RuleContext): void {
  if (e.payId !== null && (!e.payId || e.payId.length > 35 || e.payId.startsWith(' ') || outsideCharset(e.payId, CHARSET_G).length)) {
    add('Employment/PayId', 'payid.format', `payroll id ${quote(e.payId)} is not 1-35 letters, digits and the FPS's punctuation`);
  }
  if (e.leavingDate !== null) {
    if (!isIsoDate(e.leavingDate)) add('Employment/LeavingDate', 'leavingdate.format', `leaving date ${quote(e.leavingDate)} is not a date written YYYY-MM-DD`);
    else {
      if (e.leavingDate < ctx.year.leavingDateMin) {
        add(
          'Employment/LeavingDate',
          'leavingdate.range',
          `leaving date ${e.leavingDate} is before ${ctx.year.leavingDateMin}, the earliest the ${ctx.year.id} FPS takes`,
        );
      }
      const latest = isoDay(dayNumber(ctx.today) + 30);
      if (e.leavingDate > latest)
        add('Employment/LeavingDate', 'LEAVINGDATE.2', `leaving date ${e.leavingDate} is more than 30 days after ${ctx.today} (error 7831)`);
    }
  }
  if (e.paymentAfterLeaving && e.leavingDate === null)
    add('Employment/Payment/PmtAfterLeaving', 'PAYMENTAFTERLEAVINGDATEINDICATOR.0', 'payment after leaving is set but no leaving date is given (error 7847)');
  if (!PAY_FREQUENCIES.has(e.payFrequency))
    add('Employment/Payment/PayFreq', 'payfreq.value', `pay frequency ${quote(e.payFrequency)} is not one of W1 W2 W4 M1 M3 M6 MA IO IR`);
  if (!isIsoDate(e.paymentDate)) add('Employment/Payment/PmtDate', 'pmtdate.format', `payment date ${quote(e.paymentDate)} is not a date written YYYY-MM-DD`);
  else if (e.paymentDate < ctx.year.start || e.paymentDate > ctx.year.end) {
    add(
      'Employment/Payment/PmtDate',
      'pmtdate.taxyear',
      `payment date ${e.paymentDate} is outside tax year ${ctx.year.id} (${ctx.year.start} to ${ctx.year.end})`,
    );
  }
  const code = taxCodeProblem(e.taxCode.code);
  if (code) add('Employment/Payment/TaxCode', code.rule, code.message);

  money(add, 'Employment/FiguresToDate/TaxablePay', 'taxable pay to date', e.taxablePayYtd, 0, MAX);
  money(add, 'Employment/FiguresToDate/TotalTax', 'tax to date', e.totalTaxYtd, -MAX, MAX);
  money(add, 'Employment/Payment/TaxablePay', 'taxable pay in the period', e.taxablePay, -MAX, MAX);
  money(add, 'Employment/Payment/TaxDeductedOrRefunded', 'tax deducted or refunded', e.taxDeducted, -MAX_TAX, MAX_TAX);

  const seen = new Set<string>();
  for (const ni of e.niLetters) {
    if (seen.has(ni.letter))
      add('Employment/NIlettersAndValues/NIletter', 'NILETTER.1', `NI category ${ni.letter} appears more than once in one employment (error 7850)`);
    seen.add(ni.letter);
    niRules(add, r, e, ni);
  }
}

function niRules(add: Add, r: FpsEmployee, e: FpsEmployment, ni: FpsNiLetter): void {
  const L = 'Employment/NIlettersAndValues/NIletter';
  const l = ni.letter;
  if (!NI_LETTERS.has(l) || l.length !== 1) return add(L, 'niletter.value', `NI category ${quote(l)} is not a letter the FPS takes (A-Z except O and U)`);
  if (REDUCED_RATE.has(l) && r.gender === 'M') add(L, 'NILETTER.0', `NI category ${l} is for married women and widows but gender is M (error 7849)`);
  if (REDUCED_RATE.has(l) && r.birthDate && r.birthDate > '1961-04-05') {
    add(L, 'NILETTER.3', `NI category ${l} needs a date of birth on or before 1961-04-05; found ${r.birthDate} (error 7955)`);
  }
  if (SPECIAL_SITE.has(l) && !e.workplacePostcode)
    add(L, 'NILETTER.2', `NI category ${l} (freeport or investment zone) needs the employee's workplace postcode, which is not given (error 7954)`);

  if (l === 'X') {
    zero(add, NI.atLel, 'AT-LEL.0', 'earnings at the LEL to date', l, ni.atLelYtd, 7852);
    zero(add, NI.lelToPt, 'LEL-TO-PT.1', 'earnings from LEL to PT to date', l, ni.lelToPtYtd, 7853);
    zero(add, NI.ptToUel, 'PT-TO-UEL.1', 'earnings from PT to UEL to date', l, ni.ptToUelYtd, 7854);
    zero(add, NI.employerInPd, 'TOTALEMPLOYERNICONTRIBUTIONS.1', 'employer NICs in the period', l, ni.employerInPeriod, 7863);
    zero(add, NI.employerYtd, 'TOTALEMPLOYERNICONTRIBUTIONSYEARTODATE.1', 'employer NICs to date', l, ni.employerYtd, 7864);
  }
  if (NO_EMPLOYEE_NIC.has(l)) {
    zero(add, NI.employeeInPd, 'EMPLOYEESCONTRIBUTIONSONALLEARNINGS.1', 'employee NICs in the period', l, ni.employeeInPeriod, 7865);
    zero(add, NI.employeeYtd, 'EMPLOYEESCONTRIBUTIONSONALLEARNINGSYEARTODATE.1', 'employee NICs to date', l, ni.employeeYtd, 7866);
  }
  money(add, NI.grossInPd, 'gross earnings for NICs in the period', ni.grossInPeriod, -MAX, MAX);
  money(add, NI.grossYtd, 'gross earnings for NICs to date', ni.grossYtd, 0, MAX);
  money(add, NI.atLel, 'earnings at the LEL to date', ni.atLelYtd, 0, 999_900);
  if (ni.atLelYtd !== null && ni.atLelYtd % 100 !== 0)
    add(NI.atLel, 'money.whole', `earnings at the LEL to date ${decimal(ni.atLelYtd)} is not a whole number of pounds`);
  money(add, NI.lelToPt, 'earnings from LEL to PT to date', ni.lelToPtYtd, 0, 999_999);
  money(add, NI.ptToUel, 'earnings from PT to UEL to date', ni.ptToUelYtd, 0, 9_999_999);
  money(add, NI.employerInPd, 'employer NICs in the period', ni.employerInPeriod, -MAX, MAX);
  money(add, NI.employerYtd, 'employer NICs to date', ni.employerYtd, 0, MAX);
  money(add, NI.employeeInPd, 'employee NICs in the period', ni.employeeInPeriod, -MAX, MAX);
  money(add, NI.employeeYtd, 'employee NICs to date', ni.employeeYtd, 0, MAX);
}

function money(add: Add, field: FpsField, what: string, value: number | null, min: number, max: number): void {
  if (value === null) return;
  if (!Number.isSafeInteger(value)) return add(field, 'money.integer', `${what} ${value} is not a whole number of pence`);
  if (value < min || value > max) add(field, 'money.range', `${what} ${decimal(value)} is outside ${decimal(min)} to ${decimal(max)}`);
}

function zero(add: Add, field: FpsField, rule: string, what: string, letter: string, value: number | null, code: number): void {
  if (value !== null && value !== 0) add(field, rule, `${what} must be 0.00 for NI category ${letter}; found ${decimal(value)} (error ${code})`);
}
