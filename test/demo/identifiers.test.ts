import { describe, expect, it } from 'vitest';
import { bankAccount, iban, routingNumber, validateIban, validateRoutingNumber } from '../../demo/bank.ts';
import { luhnValid } from '../../transforms/identifiers/checksums.ts';
import { dayNumber } from '../../demo/calendar.ts';
import {
  frenchVatNumber,
  generateAccountsOfficeReference,
  generateBn,
  generateBnProgramAccount,
  generateBsn,
  generateCcc,
  generateCif,
  generateDni,
  generateEin,
  generateNie,
  generateNino,
  generateNir,
  generatePayeReference,
  generateRsin,
  generateSin,
  generateSiren,
  generateSiret,
  generateSsn,
  generateSteuerId,
  generateUtr,
  validateAccountsOfficeReference,
  validateBn,
  validateBsn,
  validateCcc,
  validateCif,
  validateDniOrNie,
  validateEin,
  validateNationalId,
  validateNino,
  validateNir,
  validatePayeReference,
  validateRsin,
  validateSin,
  validateSiren,
  validateSsn,
  validateSteuerId,
  validateUtr,
  type Validator,
} from '../../demo/identifiers.ts';
import { rngFor, type Rng } from '../../demo/prng.ts';

const N = 3_000;

function everyValid(generate: (rng: Rng, i: number) => string, validate: Validator): void {
  const rng = rngFor(1234, generate.length, N);
  const failures: string[] = [];
  for (let i = 0; i < N; i++) {
    const value = generate(rng, i);
    const reason = validate(value);
    if (reason) failures.push(`${value}: ${reason}`);
  }
  expect(failures).toEqual([]);
}

describe('generators produce only valid identifiers', () => {
  const born = dayNumber(1985, 7, 14);
  it.each<[string, (rng: Rng, i: number) => string, Validator]>([
    ['NINO', generateNino, validateNino],
    ['SSN', generateSsn, validateSsn],
    ['SIN', (rng, i) => generateSin(rng, i % 5 === 0), validateSin],
    ['NIR', (rng, i) => generateNir(rng, born + i * 11), validateNir],
    ['BSN', generateBsn, validateBsn],
    ['DNI', generateDni, validateDniOrNie],
    ['NIE', generateNie, validateDniOrNie],
    ['Steuer-ID', generateSteuerId, validateSteuerId],
    ['EIN', generateEin, validateEin],
    ['BN', generateBn, validateBn],
    ['BN15 payroll account', (rng) => generateBnProgramAccount(rng, generateBn(rng)), validateBn],
    ['PAYE reference', generatePayeReference, validatePayeReference],
    ['Accounts Office reference', generateAccountsOfficeReference, validateAccountsOfficeReference],
    ['UTR', generateUtr, validateUtr],
    ['SIREN', generateSiren, validateSiren],
    ['SIRET', (rng) => generateSiret(rng, generateSiren(rng)), validateSiren],
    ['RSIN', generateRsin, validateRsin],
    ['CIF', generateCif, validateCif],
    ['CCC', generateCcc, validateCcc],
    ['IBAN', (rng, i) => bankAccount(rng, ['GB', 'FR', 'NL', 'ES', 'DE'][i % 5]!).account, validateIban],
    ['ABA routing number', routingNumber, validateRoutingNumber],
  ])('%s', (_, generate, validate) => everyValid(generate, validate));

  it('a NIR carries the birth year and month', () => {
    expect(generateNir(rngFor(1), dayNumber(1985, 7, 14)).slice(1, 5)).toBe('8507');
  });
});

describe('validators reject known-bad identifiers and accept known-good ones', () => {
  it('UK NINO, US SSN and Canada SIN, by the rules their filings apply (transforms/identifiers)', () => {
    expect(validateNino('AB 12 34 56 C')).toBeNull();
    expect(validateNino('PY123456A')).toMatch(/administrative prefix PY/);
    expect(validateNino('AB 12 34 56')).toMatch(/no suffix/);
    expect(validateSsn('123-45-6789')).toBeNull();
    expect(validateSsn('078-05-1120')).toMatch(/specimen/);
    expect(validateSsn('12-345-6789')).toMatch(/not nine digits/);
    expect(luhnValid('046454286')).toBe(true);
    expect(validateSin('046 454 286')).toMatch(/starts with 0/);
    const good = generateSin(rngFor(7));
    expect(validateSin(good)).toBeNull();
    expect(validateSin(`${good.slice(0, 8)}${(Number(good[8]) + 1) % 10}`)).toMatch(/Luhn/);
  });

  it('France NIR', () => {
    const good = generateNir(rngFor(3), dayNumber(1990, 2, 1));
    expect(validateNir(good)).toBeNull();
    const key = Number(good.slice(13));
    expect(validateNir(`${good.slice(0, 13)}${String((key % 97) + 1).padStart(2, '0')}`)).toMatch(/key/);
    // Corsica: 2A counts as 19 for the key.
    const body = '185022A123456';
    const corsican = `${body}${String(97 - (Number('1850219123456') % 97)).padStart(2, '0')}`;
    expect(validateNir(corsican)).toBeNull();
  });

  it('Netherlands BSN, Spain DNI/NIE, Germany Steuer-ID', () => {
    expect(validateBsn('111222333')).toBeNull();
    expect(validateBsn('111222334')).toMatch(/elfproef/);
    expect(validateDniOrNie('12345678Z')).toBeNull();
    expect(validateDniOrNie('12345678A')).toMatch(/should be Z/);
    expect(validateDniOrNie('X1234567L')).toBeNull();
    expect(validateSteuerId('36574261809')).toBeNull();
    expect(validateSteuerId('36574261808')).toMatch(/check digit/);
    expect(validateSteuerId('12345678903')).toMatch(/repeat exactly one digit/);
    expect(validateNationalId('DNI', 'X1234567L')).toMatch(/NIE/);
    expect(validateNationalId('PASSPORT', 'X')).toMatch(/unknown/);
  });

  it('employer references', () => {
    expect(validateEin('12-3456789')).toBeNull();
    expect(validateEin('07-1234567')).toMatch(/prefix 07/);
    expect(validateBn('123456782')).toBeNull();
    expect(validateBn('123456782RP0001')).toBeNull();
    expect(validateBn('123456789')).toMatch(/Luhn/);
    expect(validateBn('123456782RP0000')).toMatch(/0000/);
    const aor = generateAccountsOfficeReference(rngFor(5));
    const wrong = aor[4] === 'A' ? 'B' : 'A';
    expect(validateAccountsOfficeReference(`${aor.slice(0, 4)}${wrong}${aor.slice(5)}`)).toMatch(/check letter/);
    expect(validatePayeReference('123/AB45678')).toBeNull();
    expect(validatePayeReference('12/AB45678')).toMatch(/three digits/);
    expect(validateUtr('2234567890K')).toBeNull();
    expect(frenchVatNumber('404833048')).toBe('FR83404833048');
  });

  it('bank accounts', () => {
    for (const good of ['GB82WEST12345698765432', 'NL91ABNA0417164300', 'DE89370400440532013000', 'FR1420041010050500013M02606'])
      expect(validateIban(good)).toBeNull();
    expect(validateIban('GB82WEST12345698765433')).toMatch(/mod 97/);
    expect(iban('GB', 'WEST12345698765432')).toBe('GB82WEST12345698765432');
    expect(validateRoutingNumber('021000021')).toBeNull();
    expect(validateRoutingNumber('021000022')).toMatch(/checksum/);
  });
});
