import { decimal } from '../common.ts';
import { parseAmount } from './amounts.ts';
import { ADDRESS_CHARS, mask, NAME_CHARS } from './charset.ts';
import { EMPLOYMENT_PROVINCES, PROVINCES } from './codes.ts';
import { bn9Problem, payrollAccountProblem, programAccountProblem } from '../../transforms/identifiers/bn.ts';
import { SIN_NOT_PROVIDED, sinProblem } from '../../transforms/identifiers/sin.ts';
import { LIMITS } from './mapping.ts';
import { has, textAt, type Node } from './scan.ts';

/**
 * The rules a file must meet beyond its schema, checked on one parsed record at a time. Each
 * takes a `report(field, rule, message)` bound to the record, so messages name slip and field.
 */

export type Report = (field: string, rule: string, message: string) => void;

/** How a slip is named in messages: position, line, employee number and masked SIN. */
export function slipLabel(index: number, line: number, slip: Node): string {
  const parts = [`line ${line}`];
  const number = textAt(slip, 'empe_nbr');
  if (number) parts.push(`employee ${number}`);
  const sin = textAt(slip, 'sin');
  if (sin) parts.push(`SIN ${mask(sin)}`);
  return `slip ${index} (${parts.join(', ')})`;
}

function badChars(value: string, allowed: RegExp): string[] {
  return [...new Set([...value].filter((c) => !allowed.test(c)))];
}

function checkLength(report: Report, field: string, value: string | undefined, max: number, rule: string): void {
  if (value !== undefined && [...value].length > max) report(field, rule, `${field} has ${[...value].length} characters, CRA's specification allows ${max}`);
}

function checkChars(report: Report, field: string, value: string | undefined, allowed: RegExp, rule: string): void {
  if (value === undefined) return;
  const bad = badChars(value, allowed);
  if (bad.length) report(field, rule, `${field} '${value}' has characters CRA does not accept: ${bad.join(' ')}`);
}

function cents(node: Node, path: string): number {
  return parseAmount(textAt(node, path) ?? '') ?? 0;
}

export function checkSlip(slip: Node, summaryBn: string | undefined, report: Report): void {
  const sin = textAt(slip, 'sin');
  if (sin !== undefined && sin !== SIN_NOT_PROVIDED) {
    const problem = sinProblem(sin);
    if (problem) report('sin', problem.rule, problem.message);
  }

  const bn = textAt(slip, 'bn');
  if (bn !== undefined) {
    const problem = payrollAccountProblem(bn.toUpperCase());
    if (problem) report('bn', problem.rule, problem.message);
    if (summaryBn !== undefined && bn.toUpperCase() !== summaryBn.toUpperCase()) {
      report('bn', 'bn.summary-mismatch', `slip account ${bn} differs from the T4 Summary's ${summaryBn}: every slip must carry the summary's payroll account`);
    }
  }

  const province = textAt(slip, 'empt_prov_cd');
  if (province !== undefined && !EMPLOYMENT_PROVINCES.has(province)) {
    report('empt_prov_cd', 'province.code', `province of employment must be an upper-case code (ON, QC, ..., US, ZZ), found '${province}'`);
  }

  checkLength(report, 'EMPE_NM/snm', textAt(slip, 'EMPE_NM/snm'), LIMITS.surname, 'name.length');
  checkChars(report, 'EMPE_NM/snm', textAt(slip, 'EMPE_NM/snm'), NAME_CHARS, 'name.charset');
  checkLength(report, 'EMPE_NM/gvn_nm', textAt(slip, 'EMPE_NM/gvn_nm'), LIMITS.givenName, 'name.length');
  checkChars(report, 'EMPE_NM/gvn_nm', textAt(slip, 'EMPE_NM/gvn_nm'), NAME_CHARS, 'name.charset');
  checkAddress(slip, 'EMPE_ADDR', report);

  const pension = cents(slip, 'T4_AMT/cpp_cntrb_amt');
  const qpp = cents(slip, 'T4_AMT/qpp_cntrb_amt');
  if (pension > 0 && qpp > 0) report('T4_AMT/qpp_cntrb_amt', 't4.cpp-qpp', 'a slip reports CPP (box 16) or QPP (box 17), not both: prepare one slip per plan');
  else if (province === 'QC' && pension > 0)
    report('T4_AMT/cpp_cntrb_amt', 't4.cpp-qpp', 'employment in Quebec reports QPP contributions in box 17 (qpp_cntrb_amt), not CPP in box 16');
  else if (province !== undefined && province !== 'QC' && qpp > 0)
    report('T4_AMT/qpp_cntrb_amt', 't4.cpp-qpp', `QPP contributions (box 17) are for employment in Quebec, the province of employment is ${province}`);
  if ((pension > 0 || qpp > 0) && cents(slip, 'T4_AMT/cpp_qpp_ern_amt') === 0) {
    report('T4_AMT/cpp_qpp_ern_amt', 't4.pensionable-earnings', 'CPP/QPP contributions are reported, so pensionable earnings (box 26) must be too');
  }
  if (cents(slip, 'T4_AMT/empe_eip_amt') > 0 && cents(slip, 'T4_AMT/ei_insu_ern_amt') === 0) {
    report('T4_AMT/ei_insu_ern_amt', 't4.insurable-earnings', 'EI premiums are reported, so insurable earnings (box 24) must be too');
  }
}

export function checkAddress(parent: Node, path: string, report: Report): void {
  if (!has(parent, path)) return;
  for (const [element, max] of [
    ['addr_l1_txt', LIMITS.addressLine],
    ['addr_l2_txt', LIMITS.addressLine],
    ['cty_nm', LIMITS.city],
  ] as const) {
    const value = textAt(parent, `${path}/${element}`);
    checkLength(report, `${path}/${element}`, value, max, 'address.length');
    checkChars(report, `${path}/${element}`, value, ADDRESS_CHARS, 'address.charset');
  }
  const country = textAt(parent, `${path}/cntry_cd`);
  const province = textAt(parent, `${path}/prov_cd`);
  if (province !== undefined && province !== province.toUpperCase())
    report(`${path}/prov_cd`, 'province.code', `province or state code must be upper case, found '${province}'`);
  if (country?.toUpperCase() === 'CAN') {
    if (province !== undefined && !PROVINCES.has(province.toUpperCase()))
      report(`${path}/prov_cd`, 'province.code', `'${province}' is not a Canadian province or territory`);
    const postcode = textAt(parent, `${path}/pstl_cd`);
    if (postcode !== undefined && !/^[A-Za-z]\d[A-Za-z]\d[A-Za-z]\d$/.test(postcode)) {
      report(`${path}/pstl_cd`, 'postcode.format', `Canadian postal code must be A9A9A9, found '${postcode}'`);
    }
  }
}

export function checkSummary(
  summary: Node,
  slipCount: number,
  sums: Readonly<Record<string, number>>,
  boxes: readonly { total: string; box: string }[],
  report: Report,
): void {
  const bn = textAt(summary, 'bn');
  if (bn !== undefined) {
    const problem = payrollAccountProblem(bn.toUpperCase());
    if (problem) report('bn', problem.rule, problem.message);
  }
  const count = textAt(summary, 'slp_cnt');
  if (count !== undefined && /^\d+$/.test(count) && Number(count) !== slipCount) {
    report('slp_cnt', 't4.slp_cnt', `slp_cnt states ${Number(count)} slips, the return holds ${slipCount}`);
  }
  for (const { total, box } of boxes) {
    const stated = textAt(summary, `T4_TAMT/${total}`);
    const statedCents = stated === undefined ? 0 : parseAmount(stated);
    if (statedCents === null) continue; // not an amount: the schema check reports it
    const sum = sums[total] ?? 0;
    if (statedCents !== sum) {
      report(
        `T4_TAMT/${total}`,
        't4.totals',
        `${total} states ${stated === undefined ? 'nothing (0.00)' : decimal(statedCents)}, the slips' ${box} add up to ${decimal(sum)}`,
      );
    }
  }
  checkAddress(summary, 'EMPR_ADDR', report);
}

export function checkTransmittal(t619: Node, summaries: number, report: Report): void {
  const accounts = (['bn9', 'bn15', 'trust', 'nr4'] as const).filter((e) => has(t619, `TransmitterAccountNumber/${e}`));
  if (accounts.length !== 1) {
    report(
      'TransmitterAccountNumber',
      't619.account',
      `TransmitterAccountNumber must hold exactly one of bn9, bn15, trust, nr4; found ${accounts.length ? accounts.join(', ') : 'none'}`,
    );
  }
  const bn9 = textAt(t619, 'TransmitterAccountNumber/bn9');
  const bn9Issue = bn9 === undefined ? null : bn9Problem(bn9);
  if (bn9Issue) report('TransmitterAccountNumber/bn9', bn9Issue.rule, bn9Issue.message);
  const bn15 = textAt(t619, 'TransmitterAccountNumber/bn15');
  const bn15Issue = bn15 === undefined ? null : programAccountProblem(bn15.toUpperCase());
  if (bn15Issue) report('TransmitterAccountNumber/bn15', bn15Issue.rule, bn15Issue.message);
  const ref = textAt(t619, 'sbmt_ref_id');
  if (ref !== undefined && !/^[A-Za-z0-9]{1,8}$/.test(ref)) {
    report('sbmt_ref_id', 't619.sbmt_ref_id', `sbmt_ref_id must be up to 8 letters and digits without spaces, hyphens or other characters, found '${ref}'`);
  }
  const count = textAt(t619, 'summ_cnt');
  if (count !== undefined && /^\d+$/.test(count) && Number(count) !== summaries) {
    report('summ_cnt', 't619.summ_cnt', `summ_cnt states ${Number(count)} summaries, the file holds ${summaries}`);
  }
}
