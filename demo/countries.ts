import {
  generateBn,
  generateBnProgramAccount,
  generateAccountsOfficeReference,
  generateCcc,
  generateCif,
  generateEin,
  generatePayeReference,
  generateRsin,
  generateSiren,
  generateSiret,
  generateUtr,
  frenchVatNumber,
} from './org-identifiers.ts';
import { generateBsn, generateDni, generateNie, generateNino, generateNir, generateSin, generateSsn, generateSteuerId } from './identifiers.ts';
import type { NationalIdType } from '../hub/entities.ts';
import { digits, int, type Rng } from './prng.ts';

/** Reference data and what employing someone in each country means for the demo hub. */

export const CURRENCIES = [
  { code: 'GBP', name: 'Pound sterling', minor_units: 2, symbol: '£' },
  { code: 'USD', name: 'US dollar', minor_units: 2, symbol: '$' },
  { code: 'CAD', name: 'Canadian dollar', minor_units: 2, symbol: 'CA$' },
  { code: 'EUR', name: 'Euro', minor_units: 2, symbol: '€' },
  { code: 'CHF', name: 'Swiss franc', minor_units: 2, symbol: 'CHF' },
  { code: 'PLN', name: 'Polish złoty', minor_units: 2, symbol: 'zł' },
  { code: 'SEK', name: 'Swedish krona', minor_units: 2, symbol: 'kr' },
  { code: 'JPY', name: 'Japanese yen', minor_units: 0, symbol: '¥' },
];

/** Countries the platform employs in, then reference-only ones (no workers yet). */
export const COUNTRIES = [
  { code: 'GB', name: 'United Kingdom', currency_code: 'GBP', national_id_type: 'NINO' },
  { code: 'US', name: 'United States', currency_code: 'USD', national_id_type: 'SSN' },
  { code: 'CA', name: 'Canada', currency_code: 'CAD', national_id_type: 'SIN' },
  { code: 'FR', name: 'France', currency_code: 'EUR', national_id_type: 'NIR' },
  { code: 'NL', name: 'Netherlands', currency_code: 'EUR', national_id_type: 'BSN' },
  { code: 'ES', name: 'Spain', currency_code: 'EUR', national_id_type: 'DNI' },
  { code: 'DE', name: 'Germany', currency_code: 'EUR', national_id_type: 'STEUER_ID' },
  { code: 'CH', name: 'Switzerland', currency_code: 'CHF', national_id_type: null },
  { code: 'PL', name: 'Poland', currency_code: 'PLN', national_id_type: null },
  { code: 'SE', name: 'Sweden', currency_code: 'SEK', national_id_type: null },
  { code: 'JP', name: 'Japan', currency_code: 'JPY', national_id_type: null },
  { code: 'IE', name: 'Ireland', currency_code: 'EUR', national_id_type: null },
];

export const EMPLOYING = ['GB', 'US', 'CA', 'FR', 'NL', 'ES', 'DE'] as const;
export type EmployingCountry = (typeof EMPLOYING)[number];

/** Countries a filing jurisdiction files for (jurisdictions/): every demo hub employs in each. */
export const FILING_COUNTRIES: readonly EmployingCountry[] = ['GB', 'US', 'CA'];

export interface Profile {
  currency: string;
  /** Annual salary range in whole currency units. */
  salary: [number, number];
  /** A two-band income tax: nothing up to the allowance, `basic` to `higherFrom`, `higher` above. */
  allowance: number;
  basic: number;
  higher: number;
  higherFrom: number;
  employeeSocial: number;
  employerSocial: number;
  hours: number;
}

/** Rough 2025 rates: plausible payslips, not tax advice. */
export const PROFILES: Record<EmployingCountry, Profile> = {
  GB: {
    currency: 'GBP',
    salary: [26_000, 140_000],
    allowance: 12_570,
    basic: 0.2,
    higher: 0.4,
    higherFrom: 50_270,
    employeeSocial: 0.08,
    employerSocial: 0.15,
    hours: 37,
  },
  US: {
    currency: 'USD',
    salary: [45_000, 220_000],
    allowance: 14_600,
    basic: 0.15,
    higher: 0.27,
    higherFrom: 100_000,
    employeeSocial: 0.0765,
    employerSocial: 0.0765,
    hours: 40,
  },
  CA: {
    currency: 'CAD',
    salary: [48_000, 170_000],
    allowance: 15_705,
    basic: 0.2,
    higher: 0.3,
    higherFrom: 57_375,
    employeeSocial: 0.076,
    employerSocial: 0.083,
    hours: 37,
  },
  FR: {
    currency: 'EUR',
    salary: [28_000, 130_000],
    allowance: 11_294,
    basic: 0.11,
    higher: 0.3,
    higherFrom: 28_797,
    employeeSocial: 0.22,
    employerSocial: 0.42,
    hours: 35,
  },
  NL: {
    currency: 'EUR',
    salary: [32_000, 125_000],
    allowance: 0,
    basic: 0.3697,
    higher: 0.495,
    higherFrom: 75_518,
    employeeSocial: 0,
    employerSocial: 0.18,
    hours: 40,
  },
  ES: {
    currency: 'EUR',
    salary: [24_000, 95_000],
    allowance: 5_550,
    basic: 0.19,
    higher: 0.3,
    higherFrom: 35_200,
    employeeSocial: 0.0647,
    employerSocial: 0.304,
    hours: 40,
  },
  DE: {
    currency: 'EUR',
    salary: [36_000, 130_000],
    allowance: 11_784,
    basic: 0.24,
    higher: 0.42,
    higherFrom: 66_760,
    employeeSocial: 0.205,
    employerSocial: 0.21,
    hours: 40,
  },
};

/** A national id of the kind the country's payroll reports, and that kind. */
export function nationalId(rng: Rng, country: EmployingCountry, birthDay: number, local: boolean): { id: string; type: NationalIdType } {
  switch (country) {
    case 'GB':
      return { id: generateNino(rng), type: 'NINO' };
    case 'US':
      return { id: generateSsn(rng), type: 'SSN' };
    case 'CA':
      // Some newcomers hold a temporary resident's SIN (first digit 9).
      return { id: generateSin(rng, !local && rng.next() < 0.3), type: 'SIN' };
    case 'FR':
      return { id: generateNir(rng, birthDay), type: 'NIR' };
    case 'NL':
      return { id: generateBsn(rng), type: 'BSN' };
    case 'ES':
      return local || rng.next() < 0.3 ? { id: generateDni(rng), type: 'DNI' } : { id: generateNie(rng), type: 'NIE' };
    case 'DE':
      return { id: generateSteuerId(rng), type: 'STEUER_ID' };
  }
}

export interface OrgRegistration {
  registration_number: string;
  tax_id: string;
  payroll_ref: string | null;
  accounts_office_ref: string | null;
}

/** What a legal entity is registered as in its jurisdiction. */
export function registration(rng: Rng, country: EmployingCountry): OrgRegistration {
  switch (country) {
    case 'GB':
      return {
        registration_number: rng.next() < 0.85 ? `${int(rng, 0, 1)}${digits(rng, 7)}` : `SC${digits(rng, 6)}`,
        tax_id: generateUtr(rng),
        payroll_ref: generatePayeReference(rng),
        accounts_office_ref: generateAccountsOfficeReference(rng),
      };
    case 'US':
      // Federal withholding is filed under the EIN; there is no separate payroll number.
      return { registration_number: `DE ${digits(rng, 7)}`, tax_id: generateEin(rng), payroll_ref: null, accounts_office_ref: null };
    case 'CA': {
      const bn = generateBn(rng);
      return { registration_number: digits(rng, 7), tax_id: bn, payroll_ref: generateBnProgramAccount(rng, bn, 'RP'), accounts_office_ref: null };
    }
    case 'FR': {
      const siren = generateSiren(rng);
      return { registration_number: siren, tax_id: frenchVatNumber(siren), payroll_ref: generateSiret(rng, siren), accounts_office_ref: null };
    }
    case 'NL': {
      const rsin = generateRsin(rng);
      return { registration_number: digits(rng, 8), tax_id: rsin, payroll_ref: `${rsin}L01`, accounts_office_ref: null };
    }
    case 'ES': {
      const cif = generateCif(rng);
      return { registration_number: cif, tax_id: cif, payroll_ref: generateCcc(rng), accounts_office_ref: null };
    }
    case 'DE':
      return {
        registration_number: `HRB ${int(rng, 10_000, 250_000)}`,
        tax_id: `${int(rng, 10, 99)}/${digits(rng, 3)}/${digits(rng, 5)}`,
        payroll_ref: digits(rng, 8),
        accounts_office_ref: null,
      };
  }
}
