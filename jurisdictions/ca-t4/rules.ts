import { decimal } from '../common.ts';
import type { Address, FilingEmployee, FilingEmployer, FilingPeriod, Submitter, Violation } from '../types.ts';
import { fits, maxText } from './amounts.ts';
import { fold, wrap } from './charset.ts';
import { alpha3, PROVINCES } from './codes.ts';
import { emailProblem, parsePhone } from './contact.ts';
import { bn9Problem, compactBn, payrollAccountProblem, programAccountProblem } from '../../transforms/identifiers/bn.ts';
import { sinProblem } from '../../transforms/identifiers/sin.ts';
import { LIMITS, provinceOfEmployment, ratesFor, slipAmountElements, slipAmounts, transmitterAccount } from './mapping.ts';

/**
 * Record-level rules of the T4 and T619 specifications (2026 season, tax year 2025), including
 * what the schema leaves unchecked: SIN and BN check digits, postal code shape, character sets.
 */

type Add = (field: string, rule: string, message: string) => void;

function collector(record: string): { violations: Violation[]; add: Add } {
  const violations: Violation[] = [];
  return { violations, add: (field, rule, message) => violations.push({ record, field, rule, message }) };
}

function checkText(add: Add, field: string, value: string, kind: 'name' | 'address'): void {
  const { rejected } = fold(value, kind);
  if (rejected.length) {
    add(
      field,
      `${kind}.charset`,
      `${field} '${value}' has characters CRA does not accept and that have no Latin form: ${rejected.join(' ')} (record the Latin-script spelling)`,
    );
  }
}

function checkAddress(add: Add, field: string, a: Address): void {
  const country = a.country.toUpperCase();
  if (!alpha3(country)) add(`${field}.country`, 'country.code', `country '${a.country}' has no ISO alpha-3 code known to this plugin`);
  checkText(add, `${field}.line1`, a.line1, 'address');
  if (a.line2) checkText(add, `${field}.line2`, a.line2, 'address');
  checkText(add, `${field}.city`, a.city, 'address');
  if (country === 'CA') {
    if (a.region !== null && !PROVINCES.has(a.region))
      add(`${field}.region`, 'province.code', `region must be an upper-case province or territory code (ON, QC, ...), found '${a.region}'`);
    const pc = a.postcode.replace(/\s/g, '');
    if (!/^[A-Za-z]\d[A-Za-z]\d[A-Za-z]\d$/.test(pc))
      add(`${field}.postcode`, 'postcode.format', `Canadian postal code must be A9A9A9 (letter, digit, ...), found '${a.postcode}'`);
  } else if (country === 'US') {
    if (!/^\d{5}(-?\d{4})?$/.test(a.postcode.trim())) add(`${field}.postcode`, 'postcode.format', `US ZIP code must be 5 or 9 digits, found '${a.postcode}'`);
  } else if (a.postcode && !/^[A-Za-z0-9 -]{1,10}$/.test(a.postcode.trim())) {
    add(`${field}.postcode`, 'postcode.format', `postal code must be up to 10 letters, digits, spaces or hyphens, found '${a.postcode}'`);
  }
}

export function validateEmployee(e: FilingEmployee, period: FilingPeriod): Violation[] {
  const { violations, add } = collector(e.workerId);

  if (e.nationalId !== null) {
    if (e.nationalIdType !== 'SIN')
      add('nationalIdType', 'sin.type', `a T4 needs a Social Insurance Number, the worker's national id is a ${e.nationalIdType}`);
    else {
      const problem = sinProblem(e.nationalId);
      if (problem) add('nationalId', problem.rule, problem.message);
    }
  }

  const surname = fold(e.familyName, 'name');
  if (!surname.text && !surname.rejected.length) add('familyName', 'name.required', 'the surname is required and is empty');
  checkText(add, 'familyName', e.familyName, 'name');
  checkText(add, 'givenName', e.givenName, 'name');
  if (e.workerId.length > LIMITS.employeeNumber)
    add('workerId', 'employee-number.length', `employee number has ${e.workerId.length} characters, CRA allows ${LIMITS.employeeNumber}`);

  checkAddress(add, 'address', e.address);
  const country = e.address.country.toUpperCase();
  if (country === 'CA' && e.address.region === null) add('address.region', 'province.code', 'region is empty: the province of employment cannot be told');

  const rates = ratesFor(period);
  if (!rates) add('period', 'period.tax-year', `tax year ${period.taxYear} is not supported: this plugin files tax year 2025 (CRA schema edition 1.26)`);

  // The figures the slip reports; employer social and net pay appear on no T4 box.
  for (const field of ['gross', 'incomeTax', 'employeeSocial'] as const) {
    const cents = e.period[field];
    if (!Number.isSafeInteger(cents)) add(`period.${field}`, 'amount.integer', `${field} must be a whole number of cents, found ${cents}`);
    else if (cents < 0)
      add(`period.${field}`, 'amount.negative', `${field} is negative (${decimal(cents)}): T4 amounts cannot be; report a correction on an amended slip`);
  }

  if (Number.isSafeInteger(e.period.employeeSocial) && e.period.employeeSocial > 0 && e.period.gross <= 0) {
    add(
      'period.gross',
      't4.pensionable-earnings',
      `contributions of ${decimal(e.period.employeeSocial)} were deducted from no employment income: boxes 24 and 26 would be empty`,
    );
  }

  const province = provinceOfEmployment(e);
  if (rates && province !== null && violations.every((v) => !v.field.startsWith('period.'))) {
    const elements = slipAmountElements(slipAmounts(e.period, province, rates));
    for (const [element, cents] of Object.entries(elements)) {
      if (cents !== null && !fits(element, cents))
        add(`period (${element})`, 'amount.range', `${element} would be ${decimal(cents)}, above the ${maxText(element)} CRA's field holds`);
    }
  }
  return violations;
}

export function validateEmployerAndSubmitter(employer: FilingEmployer, submitter: Submitter): Violation[] {
  const { violations, add } = collector(employer.orgId);

  if (employer.country.toUpperCase() !== 'CA') add('country', 'employer.country', `a T4 is filed by a Canadian employer, this one is in '${employer.country}'`);
  const root = compactBn(employer.taxId);
  const rootProblem = bn9Problem(root);
  if (rootProblem) add('taxId', rootProblem.rule, rootProblem.message);
  if (!employer.payrollRef) add('payrollRef', 'bn.required', 'the payroll program account (BN + RP + 4 digits) is required on every slip and the summary');
  else {
    const account = compactBn(employer.payrollRef);
    const problem = payrollAccountProblem(account);
    if (problem) add('payrollRef', problem.rule, problem.message);
    else if (!rootProblem && account.slice(0, 9) !== root)
      add('payrollRef', 'bn.root-mismatch', `payroll account ${account} does not belong to business number ${root}`);
  }

  const name = fold(employer.legalName, 'address');
  if (name.rejected.length)
    add('legalName', 'address.charset', `legal name '${employer.legalName}' has characters CRA does not accept: ${name.rejected.join(' ')}`);
  else if (!name.text) add('legalName', 'employer.name', 'the employer name is required and is empty');
  else if (!wrap(name.text, LIMITS.employerNameLine, 2))
    add('legalName', 'employer.name', `legal name does not fit two lines of ${LIMITS.employerNameLine} characters`);
  if (employer.address.country.toUpperCase() !== 'CA')
    add('address.country', 'employer.country', `employer address must be in Canada, found '${employer.address.country}'`);
  checkAddress(add, 'address', employer.address);

  // Submitter fields are reported under 'submitter': the pipeline configures them, not the hub.
  const sub = collector('submitter');
  const account = transmitterAccount(employer, submitter);
  if (!account)
    sub.add('authorityId', 'transmitter.account', "no business number for TransmitterAccountNumber: set the submitter's CRA id or the employer's BN");
  else {
    const problem = account.element === 'bn9' ? bn9Problem(account.value) : programAccountProblem(account.value);
    if (problem) sub.add(account.source.replace(/^submitter\./, ''), problem.rule, `transmitter account (from ${account.source}): ${problem.message}`);
  }
  const authority = submitter.authorityId?.trim().toUpperCase() ?? '';
  if (authority && !/^[A-Z0-9]{7}$/.test(authority) && !/^\d{9}([A-Z]{2}\d{4})?$/.test(compactBn(authority))) {
    const why = /^MM\d{6}$/.test(authority)
      ? 'MM transmitter numbers were removed from the T619 in 2025'
      : 'it is neither a business number nor a 7-character RepID';
    sub.add('authorityId', 'transmitter.authorityId', `'${submitter.authorityId}' cannot be used: ${why}`);
  }
  const transmitterName = fold(submitter.name, 'address');
  if (transmitterName.rejected.length)
    sub.add('name', 'address.charset', `transmitter name has characters CRA does not accept: ${transmitterName.rejected.join(' ')}`);
  else if (!transmitterName.text) sub.add('name', 'transmitter.name', 'the transmitter name is required and is empty');
  if (!alpha3(submitter.address.country))
    sub.add('address.country', 'country.code', `country '${submitter.address.country}' has no ISO alpha-3 code known to this plugin`);
  const contact = fold(submitter.contact.name, 'name');
  if (contact.rejected.length) sub.add('contact.name', 'name.charset', `contact name has characters CRA does not accept: ${contact.rejected.join(' ')}`);
  else if (!contact.text) sub.add('contact.name', 'contact.name', 'the contact name is required and is empty');
  if (!parsePhone(submitter.contact.phone))
    sub.add('contact.phone', 'contact.phone', `'${submitter.contact.phone}' is not a North American number (CRA takes a 3-digit area code and 999-9999)`);
  const email = emailProblem(submitter.contact.email);
  if (email) sub.add('contact.email', 'contact.email', email);

  return [...violations, ...sub.violations];
}
