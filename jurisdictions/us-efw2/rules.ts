import type { Address, FilingEmployee, FilingEmployer, FilingPeriod, Submitter, Violation } from '../types.ts';
import { SUPPORTED_TAX_YEARS } from './amounts.ts';
import { compactEin, einProblem } from '../../transforms/identifiers/ein.ts';
import { compactSsn, ssnProblem } from '../../transforms/identifiers/ssn.ts';
import { bsoUserIdRule } from './identifiers.ts';
import { phoneDigits, usState } from './mapping.ts';
import { STATES, efw2CountryCode, isUsPostal, splitZip } from './places.ts';
import { PERSON_NAME, foldUpper, mask, unwritable } from './text.ts';

/** Record-level rules on canonical records, before anything is written. */

type Emit = (field: string, rule: string, message: string) => void;

function collector(record: string): { out: Violation[]; emit: Emit } {
  const out: Violation[] = [];
  return { out, emit: (field, rule, message) => out.push({ record, field, rule, message }) };
}

/** Free text (employer names, addresses) must fold to printable ASCII. */
function checkText(emit: Emit, field: string, value: string | null, required: boolean): void {
  if (value === null || value.trim() === '') {
    if (required) emit(field, 'efw2.required', `${field} is required and is empty`);
    return;
  }
  const bad = unwritable(foldUpper(value));
  if (bad.length) emit(field, 'efw2.charset', `${field} '${value}' has characters with no ASCII equivalent: ${bad.join(' ')}`);
}

function checkPersonName(emit: Emit, field: string, value: string): void {
  const folded = foldUpper(value);
  if (!folded) return emit(field, 'name.missing', `${field} is empty`);
  if (!/[A-Z]/.test(folded)) {
    return emit(field, 'name.latin', `${field} '${value}' has no Latin letters; EFW2 takes names in ASCII letters only (a romanised name is needed)`);
  }
  if (!PERSON_NAME.test(folded)) {
    const bad = [...new Set([...folded].filter((c) => !/[A-Z' -]/.test(c)))];
    emit(
      field,
      'name.charset',
      `${field} '${value}' has characters a name may not carry: ${bad.map((c) => `'${c}'`).join(' ')} (letters, spaces, hyphens and apostrophes only)`,
    );
  }
}

function checkAddress(emit: Emit, address: Address, field = 'address'): void {
  checkText(emit, `${field}.line1`, address.line1, true);
  checkText(emit, `${field}.line2`, address.line2, false);
  checkText(emit, `${field}.city`, address.city, true);
  checkText(emit, `${field}.region`, address.region, false);
  const iso = address.country.trim().toUpperCase();
  if (isUsPostal(iso)) {
    if (!splitZip(address.postcode)) emit(`${field}.postcode`, 'address.zip', `US ZIP code must be 5 digits or ZIP+4, found '${address.postcode}'`);
    if (iso !== 'US') return;
    const state = usState(address);
    if (state === null) emit(`${field}.region`, 'address.state', `US address has no state and its ZIP '${address.postcode}' does not identify one`);
    else if (!STATES.has(state)) emit(`${field}.region`, 'address.state', `'${address.region}' is not a USPS state abbreviation`);
  } else {
    checkText(emit, `${field}.postcode`, address.postcode, false);
    if (!efw2CountryCode(iso)) emit(`${field}.country`, 'address.country', `no EFW2 country code is known for '${address.country}'`);
  }
}

const MAX_RW_AMOUNT = 99_999_999_999;

function checkAmount(emit: Emit, field: string, value: number): void {
  if (!Number.isSafeInteger(value)) return emit(field, 'efw2.amount.integer', `${field} must be a whole number of cents, found ${value}`);
  if (value < 0) return emit(field, 'efw2.amount.negative', `${field} is negative (${value} cents); EFW2 amounts carry no sign`);
  if (value > MAX_RW_AMOUNT) {
    emit(
      field,
      'efw2.amount.width',
      `${field} ${value} cents does not fit the 11-digit RW field (max $999,999,999.99); SSA wants it split over several W-2s, which is not supported`,
    );
  }
}

export function validateEmployee(employee: FilingEmployee, period: FilingPeriod): Violation[] {
  const { out, emit } = collector(employee.workerId);
  if (!SUPPORTED_TAX_YEARS.includes(period.taxYear)) {
    emit(
      'taxYear',
      'efw2.taxYear',
      `tax year ${period.taxYear} is not supported: the layout follows Pub. 42-007 for tax years ${SUPPORTED_TAX_YEARS.join(', ')}`,
    );
  }
  if (employee.nationalIdType !== 'SSN') {
    emit('nationalIdType', 'ssn.type', `national id type is '${employee.nationalIdType}'; a W-2 needs an SSN`);
  } else if (employee.nationalId !== null && employee.nationalId.trim() !== '') {
    const ssn = compactSsn(employee.nationalId);
    const broken = ssn
      ? ssnProblem(ssn)
      : { rule: 'ssn.format', message: `SSN must be nine digits (AAA-GG-SSSS), found '${mask(employee.nationalId.trim())}'` };
    if (broken) emit('nationalId', broken.rule, broken.message);
  }
  checkPersonName(emit, 'givenName', employee.givenName);
  checkPersonName(emit, 'familyName', employee.familyName);
  checkAddress(emit, employee.address);
  checkAmount(emit, 'period.gross', employee.period.gross);
  checkAmount(emit, 'period.incomeTax', employee.period.incomeTax);
  if (employee.period.gross === 0 && employee.period.incomeTax === 0) {
    emit('period.gross', 'efw2.amount.none', `nothing was paid or withheld in tax year ${period.taxYear}: there is no W-2 to file`);
  }
  return out;
}

export function validateEmployerAndSubmitter(employer: FilingEmployer, submitter: Submitter): Violation[] {
  const er = collector(employer.orgId);
  const ein = compactEin(employer.taxId);
  const einBroken = ein ? einProblem(ein) : { rule: 'ein.format', message: `EIN must be nine digits (XX-XXXXXXX), found '${employer.taxId}'` };
  if (einBroken) er.emit('taxId', einBroken.rule, einBroken.message);
  checkText(er.emit, 'legalName', employer.legalName, true);
  checkAddress(er.emit, employer.address);

  const sub = collector('submitter');
  if (submitter.authorityId === null || submitter.authorityId.trim() === '') {
    sub.emit('authorityId', 'bso.userId', 'the RA record needs the BSO user id of the person submitting; none is configured');
  } else {
    const broken = bsoUserIdRule(submitter.authorityId.trim().toUpperCase());
    if (broken) sub.emit('authorityId', broken.rule, broken.message);
  }
  if (submitter.taxId !== null) {
    const subEin = compactEin(submitter.taxId);
    const broken = subEin ? einProblem(subEin) : { rule: 'ein.format', message: `EIN must be nine digits (XX-XXXXXXX), found '${submitter.taxId}'` };
    if (broken) sub.emit('taxId', broken.rule, broken.message);
  }
  checkText(sub.emit, 'name', submitter.name, true);
  checkAddress(sub.emit, submitter.address);
  checkText(sub.emit, 'contact.name', submitter.contact.name, true);
  const phone = phoneDigits(submitter.contact.phone);
  if (phone.length < 10 || phone.length > 15) {
    sub.emit('contact.phone', 'contact.phone', `contact phone must have 10 to 15 digits, found '${submitter.contact.phone}'`);
  }
  const email = submitter.contact.email.trim();
  if (!/^[\x21-\x7e]+@[\x21-\x7e]+\.[\x21-\x7e]+$/.test(email) || email.length > 40) {
    sub.emit('contact.email', 'contact.email', `contact e-mail must be an ASCII address of at most 40 characters, found '${email}' (${email.length})`);
  }
  return [...er.out, ...sub.out];
}
