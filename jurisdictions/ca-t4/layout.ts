/** The fixed text around the records, and which summary total sums which slip box. */

// CRA's 2026 T619 page gives this exact root for every return type except T5013.
export const SUBMISSION_OPEN = '<?xml version="1.0" encoding="UTF-8"?>\n<Submission xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n';
export const RETURN_OPEN = '<Return>\n<T4>\n';
// CRA rejects a file with anything after the closing tag, so no final newline.
export const RETURN_CLOSE = '</T4>\n</Return>\n</Submission>';

export interface TotalLine {
  /** Element in T4_TAMT. */
  readonly total: string;
  /** Name in RenderTotals.money. */
  readonly key: string;
  /** The slip element (in T4_AMT) it totals; null for the employer's shares, which no slip shows. */
  readonly box: string | null;
}

/** T4_TAMT in the order CRA's specification lists it. */
export const TOTAL_LINES: readonly TotalLine[] = [
  { total: 'tot_empt_incamt', key: 'employmentIncome', box: 'empt_incamt' },
  { total: 'tot_empe_cpp_amt', key: 'cppContributions', box: 'cpp_cntrb_amt' },
  { total: 'tot_empe_cppe_amt', key: 'cpp2Contributions', box: 'cppe_cntrb_amt' },
  { total: 'tot_empe_eip_amt', key: 'eiPremiums', box: 'empe_eip_amt' },
  { total: 'tot_rpp_cntrb_amt', key: 'rppContributions', box: 'rpp_cntrb_amt' },
  { total: 'tot_itx_ddct_amt', key: 'incomeTax', box: 'itx_ddct_amt' },
  { total: 'tot_padj_amt', key: 'pensionAdjustment', box: 'padj_amt' },
  { total: 'tot_empr_cpp_amt', key: 'employerCpp', box: null },
  { total: 'tot_empr_cppe_amt', key: 'employerCpp2', box: null },
  { total: 'tot_empr_eip_amt', key: 'employerEi', box: null },
];
