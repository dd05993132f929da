import { PermanentError } from '../../core/errors.ts';
import type { Money } from '../../jurisdictions/types.ts';

/**
 * Decimal text as the hub prints it (numeric(14,2): '1234.50', '-0.05') to integer minor units,
 * by the digits: parseFloat('0.29') * 100 is 28.999999999999996, and filings add up to the cent.
 */
export function minorUnits(text: string, what: string): number {
  const m = AMOUNT.exec(text);
  if (!m) throw new PermanentError(`${what}: '${text}' is not an amount with at most two decimals`);
  const minor = exactMinorUnits(text);
  if (minor === null) throw new PermanentError(`${what}: '${text}' is too large to add up exactly`);
  return minor;
}

const AMOUNT = /^(-?)(\d+)(?:\.(\d{1,2}))?$/;

/** `minorUnits` for a caller that rejects a record instead of failing: null when not exact. */
export function exactMinorUnits(text: string): number | null {
  const m = AMOUNT.exec(text);
  if (!m) return null;
  const minor = Number(m[2]) * 100 + Number((m[3] ?? '').padEnd(2, '0'));
  if (!Number.isSafeInteger(minor)) return null;
  return m[1] ? -minor : minor;
}

export const ZERO: Money = Object.freeze({ gross: 0, incomeTax: 0, employeeSocial: 0, employerSocial: 0, net: 0 });

export const MONEY_FIELDS = ['gross', 'incomeTax', 'employeeSocial', 'employerSocial', 'net'] as const satisfies readonly (keyof Money)[];

/** Running sums of Money, exact as long as they stay below 2^53 minor units (90 trillion). */
export class MoneySums {
  readonly sums: Record<keyof Money, number> = { ...ZERO };

  add(m: Money): void {
    for (const f of MONEY_FIELDS) this.sums[f] += m[f];
  }
}
