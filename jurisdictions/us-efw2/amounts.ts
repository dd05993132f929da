/**
 * W-2 boxes 1-6 from the hub's year figures. The hub holds one employee social figure, not
 * the social security / Medicare split the W-2 needs, so boxes 3-6 are computed at the
 * statutory rates from gross pay. All arithmetic is in integer cents.
 */

/** Social security wage base per tax year, in cents (SSA's annual announcement). */
export const SOCIAL_SECURITY_WAGE_BASE: Readonly<Record<string, number>> = {
  '2024': 16_860_000,
  '2025': 17_610_000,
};

/** The tax years this plugin's layout is valid for (TY2024 and TY2025 share one layout). */
export const SUPPORTED_TAX_YEARS: readonly string[] = Object.keys(SOCIAL_SECURITY_WAGE_BASE);

/** Additional Medicare tax applies to wages above this, whatever the filing status on the W-2. */
const ADDITIONAL_MEDICARE_THRESHOLD = 20_000_000;

export interface WageBoxes {
  readonly wages: number;
  readonly federalIncomeTax: number;
  readonly socialSecurityWages: number;
  readonly socialSecurityTax: number;
  readonly medicareWages: number;
  readonly medicareTax: number;
}

/** Rounds a non-negative ratio n/d half up, exactly (n stays far below 2^53 for any wage). */
const roundDiv = (n: number, d: number) => Math.floor((2 * n + d) / (2 * d));

export function wageBoxes(gross: number, incomeTax: number, taxYear: string): WageBoxes {
  const base = SOCIAL_SECURITY_WAGE_BASE[taxYear];
  if (base === undefined) throw new RangeError(`no social security wage base for tax year ${taxYear}`);
  const socialSecurityWages = Math.min(gross, base);
  const over = Math.max(0, gross - ADDITIONAL_MEDICARE_THRESHOLD);
  return {
    wages: gross,
    federalIncomeTax: incomeTax,
    socialSecurityWages,
    // 6.2% and 1.45% + 0.9% as exact fractions of 10,000, one rounding each.
    socialSecurityTax: roundDiv(socialSecurityWages * 620, 10_000),
    medicareWages: gross,
    medicareTax: roundDiv(gross * 145 + over * 90, 10_000),
  };
}
