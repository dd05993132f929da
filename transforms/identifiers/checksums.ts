/** Check-digit arithmetic shared by the identifier rules and the demo hub's bank accounts. */

/** Luhn (mod 10) over a string of digits that ends with its check digit. */
export function luhnValid(digits: string): boolean {
  return luhnSum(digits, false) % 10 === 0;
}

/** The digit that makes `partial` + digit pass Luhn. */
export function luhnCheckDigit(partial: string): number {
  return (10 - (luhnSum(partial, true) % 10)) % 10;
}

function luhnSum(digits: string, doubleLast: boolean): number {
  let sum = 0;
  let double = doubleLast;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum;
}

/** A decimal string of any length mod 97, in chunks that stay exact in a double. */
export function mod97(digits: string): number {
  let rest = 0;
  for (let i = 0; i < digits.length; i += 7) rest = Number(`${rest}${digits.slice(i, i + 7)}`) % 97;
  return rest;
}

/**
 * The Dutch "elfproef" used by BSN and RSIN: weights 9..2 on the first eight digits and -1 on
 * the ninth; the sum is a multiple of 11.
 */
export function elevenProofValid(digits: string): boolean {
  if (!/^\d{9}$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += (9 - i) * (digits.charCodeAt(i) - 48);
  sum -= digits.charCodeAt(8) - 48;
  return sum % 11 === 0;
}

/** The ninth digit for eight, or null when none exists (the weighted sum is 10 mod 11). */
export function elevenProofCheckDigit(eight: string): number | null {
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += (9 - i) * (eight.charCodeAt(i) - 48);
  const d = sum % 11;
  return d === 10 ? null : d;
}

export const isDigits = (s: string, n: number): boolean => s.length === n && /^\d+$/.test(s);
