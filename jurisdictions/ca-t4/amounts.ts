import { decimal } from '../common.ts';

/**
 * Money as the T4 schema writes it: unsigned, two decimals, at most N whole-dollar digits
 * (decimalNType allows N-2 of them). Values stay in integer cents throughout.
 */

/** Whole-dollar digits each amount element allows (t4.xsd types decimal6/7/9/10/11/13). */
export const DOLLAR_DIGITS: Readonly<Record<string, number>> = {
  empt_incamt: 8,
  cpp_cntrb_amt: 4,
  cppe_cntrb_amt: 4,
  qpp_cntrb_amt: 4,
  qppe_cntrb_amt: 4,
  empe_eip_amt: 4,
  rpp_cntrb_amt: 5,
  itx_ddct_amt: 8,
  ei_insu_ern_amt: 5,
  cpp_qpp_ern_amt: 7,
  unn_dues_amt: 7,
  chrty_dons_amt: 7,
  padj_amt: 5,
  prov_pip_amt: 4,
  prov_insu_ern_amt: 5,
  tot_empt_incamt: 11,
  tot_empe_cpp_amt: 9,
  tot_empe_cppe_amt: 9,
  tot_empe_eip_amt: 9,
  tot_rpp_cntrb_amt: 9,
  tot_itx_ddct_amt: 11,
  tot_padj_amt: 11,
  tot_empr_cpp_amt: 9,
  tot_empr_cppe_amt: 9,
  tot_empr_eip_amt: 9,
};

/** True when `cents` can be written in `element` (non-negative and within its digits). */
const LIMIT_CENTS: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(DOLLAR_DIGITS).map(([element, digits]) => [element, 10 ** (digits + 2)]),
);

export function fits(element: string, cents: number): boolean {
  const limit = LIMIT_CENTS[element];
  return limit !== undefined && Number.isSafeInteger(cents) && cents >= 0 && cents < limit;
}

/** The largest amount an element can hold, as text for messages. */
export function maxText(element: string): string {
  return decimal(10 ** ((DOLLAR_DIGITS[element] ?? 0) + 2) - 1);
}

/** Cents from the schema's amount text ('1234.56', '1234,56', '.50'); null when it is not one. */
export function parseAmount(text: string): number | null {
  const m = /^(\d*)[.,](\d{2})$/.exec(text.trim());
  if (!m) return null;
  const cents = Number(m[1] || '0') * 100 + Number(m[2]);
  return Number.isSafeInteger(cents) ? cents : null;
}
