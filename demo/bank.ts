import { mod97 } from '../transforms/identifiers/checksums.ts';
import { digits, int, pick, type Rng } from './prng.ts';

/** Bank accounts: IBANs with correct check digits (and national check digits where cheap), US routing numbers. */

const LETTER_A = 65;

/** Letters as 10..35, as the IBAN check (ISO 13616) reads them. */
function numeric(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= LETTER_A ? String(c - LETTER_A + 10) : s[i];
  }
  return out;
}

export function iban(country: string, bban: string): string {
  const check = 98 - mod97(numeric(`${bban}${country}00`));
  return `${country}${String(check).padStart(2, '0')}${bban}`;
}

export function validateIban(value: string): string | null {
  const v = value.replace(/\s/g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$/.test(v)) return 'not a country code, two check digits and an account';
  return mod97(numeric(`${v.slice(4)}${v.slice(0, 4)}`)) === 1 ? null : 'check digits do not match (mod 97)';
}

/** Spanish "dígitos de control" of the CCC inside the IBAN. */
function spanishControl(ten: string): number {
  const weights = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6];
  let sum = 0;
  for (let i = 0; i < 10; i++) sum += weights[i]! * (ten.charCodeAt(i) - 48);
  const d = 11 - (sum % 11);
  return d === 11 ? 0 : d === 10 ? 1 : d;
}

const BBAN: Record<string, (rng: Rng) => string> = {
  GB: (rng) => `${pick(rng, ['BARC', 'HBUK', 'LOYD', 'NWBK', 'MIDL', 'MONZ'])}${digits(rng, 6)}${digits(rng, 8)}`,
  FR: (rng) => {
    const bank = pick(rng, ['30004', '30003', '20041', '10278', '30002']);
    const branch = digits(rng, 5);
    const account = digits(rng, 11);
    // Clé RIB: 97 - (89 bank + 15 branch + 3 account) mod 97.
    const key = 97 - ((89 * Number(bank) + 15 * Number(branch) + 3 * Number(account)) % 97);
    return `${bank}${branch}${account}${String(key).padStart(2, '0')}`;
  },
  NL: (rng) => `${pick(rng, ['ABNA', 'INGB', 'RABO', 'SNSB', 'TRIO', 'BUNQ'])}${digits(rng, 10)}`,
  ES: (rng) => {
    const entity = `${pick(rng, ['0049', '0182', '2100', '0081', '0128'])}${digits(rng, 4)}`;
    const account = digits(rng, 10);
    return `${entity}${spanishControl(`00${entity}`)}${spanishControl(account)}${account}`;
  },
  DE: (rng) => `${pick(rng, ['10070000', '20040000', '37040044', '50010517', '70020270'])}${digits(rng, 10)}`,
};

/** ABA routing number: weights 3, 7, 1 repeated; the sum is a multiple of 10. */
export function routingNumber(rng: Rng): string {
  const eight = `${String(int(rng, 1, 12)).padStart(2, '0')}${digits(rng, 6)}`;
  const w = [3, 7, 1, 3, 7, 1, 3, 7];
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += w[i]! * (eight.charCodeAt(i) - 48);
  return `${eight}${(10 - (sum % 10)) % 10}`;
}

export function validateRoutingNumber(value: string): string | null {
  if (!/^\d{9}$/.test(value)) return 'not nine digits';
  const w = [3, 7, 1, 3, 7, 1, 3, 7, 1];
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += w[i]! * (value.charCodeAt(i) - 48);
  return sum % 10 === 0 ? null : 'fails the ABA checksum';
}

/** `{ account, code }`: an IBAN where the country uses them, else an account number and its bank's code. */
export function bankAccount(rng: Rng, country: string): { account: string; code: string | null } {
  const bban = BBAN[country];
  if (bban) return { account: iban(country, bban(rng)), code: null };
  if (country === 'US') return { account: digits(rng, int(rng, 9, 12)), code: routingNumber(rng) };
  // Canada: transit (branch) and institution number, then a 7-digit account.
  return { account: digits(rng, 7), code: `${digits(rng, 5)}-${pick(rng, ['001', '002', '003', '004', '006', '010'])}` };
}
