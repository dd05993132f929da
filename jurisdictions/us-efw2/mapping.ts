import type { Address, FilingEmployee, FilingEmployer, Submitter } from '../types.ts';
import { wageBoxes } from './amounts.ts';
import { compactEin } from '../../transforms/identifiers/ein.ts';
import { compactSsn, SSN_NOT_KNOWN } from '../../transforms/identifiers/ssn.ts';
import { RT, RW, moneyFields } from './layout.ts';
import { efw2CountryCode, isUsPostal, splitZip, stateFromZip } from './places.ts';
import type { FieldValues } from './record.ts';
import { fit, foldUpper } from './text.ts';

/**
 * Canonical records -> EFW2 field values, keyed by the layout's field names. Pure: no I/O, no
 * clock. Values are written as they come out of here, so the rules (rules.ts) check the same
 * derived values the file will carry.
 */

const text = (value: string | null | undefined, width: number) => (value ? fit(foldUpper(value), width) : '');

const ADDRESS_FIELDS = ['locationAddress', 'deliveryAddress', 'city', 'state', 'zip', 'zipExtension', 'foreignState', 'foreignPostalCode', 'country'] as const;
type AddressFields = Record<(typeof ADDRESS_FIELDS)[number], string>;

/** The address block: delivery address = street (line 1), location address = suite, c/o (line 2). */
export function addressFields(address: Address): AddressFields {
  const iso = address.country.trim().toUpperCase();
  const domestic = isUsPostal(iso);
  const zip = domestic ? splitZip(address.postcode) : null;
  return {
    locationAddress: text(address.line2, 22),
    deliveryAddress: text(address.line1, 22),
    city: text(address.city, 22),
    state: domestic ? (iso === 'US' ? (usState(address) ?? '') : iso) : '',
    zip: zip?.[0] ?? '',
    zipExtension: zip?.[1] ?? '',
    foreignState: domestic ? '' : text(address.region, 23),
    foreignPostalCode: domestic ? '' : text(address.postcode, 15),
    country: domestic ? '' : (efw2CountryCode(iso) ?? ''),
  };
}

/** The RA record names the two address blocks 'company...' and 'submitter...'. */
function prefixed(prefix: string, fields: AddressFields): Record<string, string> {
  return Object.fromEntries(ADDRESS_FIELDS.map((name) => [`${prefix}${name[0]!.toUpperCase()}${name.slice(1)}`, fields[name]]));
}

/** The state of a US address: its region, or the state its ZIP code is allocated to. */
export function usState(address: Address): string | null {
  const region = address.region?.trim().toUpperCase();
  if (region) return region;
  const zip = splitZip(address.postcode);
  return zip ? stateFromZip(zip[0]) : null;
}

/** Digits of a phone number; a leading NANP country code 1 is dropped from 11-digit numbers. */
export function phoneDigits(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  return digits.length === 11 && digits.startsWith('1') ? digits.slice(1) : digits;
}

/** The EIN the RA record carries: the submitter's, or the employer's when it files itself. */
export function submitterEin(submitter: Submitter, employer: FilingEmployer): string {
  const raw = submitter.taxId ?? employer.taxId;
  return compactEin(raw) ?? raw;
}

export function submitterFields(submitter: Submitter, employer: FilingEmployer): FieldValues {
  const ein = submitterEin(submitter, employer);
  return {
    submitterEin: ein,
    userId: (submitter.authorityId ?? '').trim().toUpperCase(),
    resubIndicator: '0',
    // 98: software written in-house (hubflow), so no NACTP vendor code.
    softwareCode: '98',
    companyName: text(submitter.name, 57),
    ...prefixed('company', addressFields(submitter.address)),
    submitterName: text(submitter.name, 57),
    ...prefixed('submitter', addressFields(submitter.address)),
    contactName: text(submitter.contact.name, 27),
    contactPhone: phoneDigits(submitter.contact.phone),
    contactEmail: submitter.contact.email.trim(),
    // L: the employer prepares its own file; S: a service bureau (the EOR platform) does.
    preparerCode: ein === (compactEin(employer.taxId) ?? employer.taxId) ? 'L' : 'S',
  };
}

export function employerFields(employer: FilingEmployer, submitter: Submitter, taxYear: string): FieldValues {
  return {
    taxYear,
    ein: compactEin(employer.taxId) ?? employer.taxId,
    terminatingBusinessIndicator: '0',
    employerName: text(employer.legalName, 57),
    ...addressFields(employer.address),
    // The hub does not classify employers: a private, non-501(c) business filing Form 941.
    kindOfEmployer: 'N',
    employmentCode: 'R',
    thirdPartySickPayIndicator: '0',
    contactName: text(submitter.contact.name, 27),
    contactPhone: phoneDigits(submitter.contact.phone),
    contactEmail: submitter.contact.email.trim(),
  };
}

/** The SSN the RW record carries: nine digits, or zeros when the hub has none. */
export function employeeSsn(employee: FilingEmployee): string {
  if (employee.nationalId === null || employee.nationalId.trim() === '') return SSN_NOT_KNOWN;
  return compactSsn(employee.nationalId) ?? employee.nationalId.trim();
}

/** The RW fields this plugin fills; every other RW field is written as zeros or spaces. */
export const RW_FILLED = [
  'ssn',
  'firstName',
  'lastName',
  ...ADDRESS_FIELDS,
  'wages',
  'federalIncomeTax',
  'socialSecurityWages',
  'socialSecurityTax',
  'medicareWages',
  'medicareTax',
  'statutoryEmployeeIndicator',
  'retirementPlanIndicator',
  'thirdPartySickPayIndicator',
] as const;

export function employeeFields(employee: FilingEmployee, taxYear: string): Readonly<Record<(typeof RW_FILLED)[number], string | number>> {
  const boxes = wageBoxes(employee.period.gross, employee.period.incomeTax, taxYear);
  const address = addressFields(employee.address);
  return {
    ssn: employeeSsn(employee),
    firstName: text(employee.givenName, 15),
    lastName: text(employee.familyName, 20),
    locationAddress: address.locationAddress,
    deliveryAddress: address.deliveryAddress,
    city: address.city,
    state: address.state,
    zip: address.zip,
    zipExtension: address.zipExtension,
    foreignState: address.foreignState,
    foreignPostalCode: address.foreignPostalCode,
    country: address.country,
    wages: boxes.wages,
    federalIncomeTax: boxes.federalIncomeTax,
    socialSecurityWages: boxes.socialSecurityWages,
    socialSecurityTax: boxes.socialSecurityTax,
    medicareWages: boxes.medicareWages,
    medicareTax: boxes.medicareTax,
    statutoryEmployeeIndicator: '0',
    // The hub does not record plan participation (W-2 box 13).
    retirementPlanIndicator: '0',
    thirdPartySickPayIndicator: '0',
  };
}

/** RT money fields that sum an RW field of the same name. */
export const TOTALLED: readonly string[] = moneyFields(RT)
  .map((f) => f.name)
  .filter((name) => moneyFields(RW).some((f) => f.name === name));

export function totalFields(numberOfRw: number, totals: Readonly<Record<string, number>>): FieldValues {
  return { numberOfRw, ...totals };
}

export function finalFields(numberOfRw: number): FieldValues {
  return { numberOfRw };
}
