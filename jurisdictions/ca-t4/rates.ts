/**
 * Statutory 2025 figures used to split the hub's single employee social amount into pension
 * (CPP, or QPP for employment in Quebec) and EI, and to cap the earnings boxes. Only the tax
 * years listed here can be filed: another year needs its own figures (and CRA schema edition).
 */

export interface YearRates {
  /** Employee contribution rates in hundredths of a percent (5.95% = 595): integer arithmetic keeps splits exact. */
  readonly cpp: number;
  readonly eiOutsideQuebec: number;
  readonly qpp: number;
  readonly eiQuebec: number;
  /** Maximum insurable earnings (box 24) and maximum pensionable earnings, YMPE (box 26), in cents. */
  readonly maxInsurable: number;
  readonly maxPensionable: number;
}

export const RATES: Readonly<Record<string, YearRates>> = {
  '2025': { cpp: 595, eiOutsideQuebec: 164, qpp: 640, eiQuebec: 131, maxInsurable: 6_570_000, maxPensionable: 7_130_000 },
};

/** The employer pays EI premiums at 1.4 times the employee's rate (Employment Insurance Act s. 68). */
export const EMPLOYER_EI_FACTOR_TENTHS = 14;
