import type { IdProblem } from '../../transforms/identifiers/problem.ts';
import { quote } from './text.ts';

/**
 * PAYE tax codes as the FPS carries them. The identifiers an FPS holds (NINO, PAYE and Accounts
 * Office references, UTR) follow HMRC's rules in transforms/identifiers.
 */

const compact = (value: string) => value.replace(/\s+/g, '').toUpperCase();

export interface TaxCode {
  /** The code proper, as `Payment/TaxCode` holds it: '1257L', 'BR', 'K475', 'D0'. */
  readonly code: string;
  /** Scottish (S) or Welsh (C) rates: the TaxRegime attribute. */
  readonly regime: 'S' | 'C' | null;
  /** Week 1 / month 1 basis (suffix W1, M1 or X): the BasisNonCumulative attribute. */
  readonly nonCumulative: boolean;
}

/** The schema's pattern for the code proper, verbatim. */
const TAX_CODE = /^(([1-9][0-9]{0,5}[LMNPTY])|(BR)|(0T)|(NT)|(D[0-8])|([K][1-9][0-9]{0,5}))$/;

/** Reads a tax code as payroll writes it ('S1257L', '1257L W1', 'c0t') into the FPS's parts. */
export function parseTaxCode(value: string): TaxCode {
  const v = compact(value);
  const m = /^([SC])?(.+?)(W1|M1|X)?$/.exec(v);
  if (!m) return { code: v, regime: null, nonCumulative: false };
  return { code: m[2]!, regime: (m[1] as 'S' | 'C' | undefined) ?? null, nonCumulative: m[3] !== undefined };
}

export function taxCodeProblem(code: string): IdProblem | null {
  if (code.length >= 2 && code.length <= 7 && TAX_CODE.test(code)) return null;
  return {
    rule: 'taxcode.format',
    message: `tax code ${quote(code)} is not one HMRC issues (a number and L, M, N, P, T or Y; K and a number; BR, 0T, NT or D0-D8)`,
  };
}
