/**
 * The EFW2 record layouts (SSA Publication 42-007, tax year 2025) as data. The writer, the
 * parser and the file validator all read these tables, so they cannot disagree about where a
 * field sits. Positions are 1-based and inclusive as the publication prints them.
 */

/** A alphanumeric (left-justified, blank-filled), N numeric, M money in cents, B blank. */
export type FieldKind = 'A' | 'N' | 'M' | 'B';

export interface Field {
  /** Filing field name; RT/RU totals carry the name of the RW/RO field they sum. */
  readonly name: string;
  readonly start: number;
  readonly length: number;
  readonly kind: FieldKind;
  /** Must not be blank (or all zeros for an identifier). */
  readonly required?: boolean;
  /** The only values allowed (blank allowed only when listed as ''). */
  readonly values?: readonly string[];
  /** N field that may be all spaces ("N or B" in the publication). */
  readonly blankable?: boolean;
  /** N field written left-justified and blank-filled (the RA contact phone). */
  readonly leftJustified?: boolean;
  /** A field that keeps lower case (the e-mail fields are the only ones). */
  readonly mixedCase?: boolean;
  /** Content defined by a state agency: only the character set is checked. */
  readonly stateDefined?: boolean;
  /** A national id: messages show only its last three characters. */
  readonly sensitive?: boolean;
}

export type RecordType = 'RA' | 'RE' | 'RW' | 'RO' | 'RS' | 'RT' | 'RU' | 'RV' | 'RF';

export interface Layout {
  readonly type: RecordType;
  readonly fields: readonly Field[];
}

export const RECORD_LENGTH = 512;

type Spec = readonly [name: string, start: number, length: number, kind: FieldKind, extra?: Omit<Field, 'name' | 'start' | 'length' | 'kind'>];

const REQUIRED = { required: true } as const;
const BLANKABLE = { blankable: true } as const;
const FLAG = { values: ['0', '1'] } as const;
const EMAIL = { mixedCase: true } as const;

function layout(type: RecordType, specs: readonly Spec[]): Layout {
  const fields = specs.map(([name, start, length, kind, extra]) => ({ name, start, length, kind, ...extra }));
  // A table that does not tile 1..512 exactly would shift every later field: refuse to load.
  let next = 1;
  for (const f of fields) {
    if (f.start !== next) throw new Error(`EFW2 layout ${type}: field '${f.name}' starts at ${f.start}, expected ${next}`);
    next = f.start + f.length;
  }
  if (next !== RECORD_LENGTH + 1) throw new Error(`EFW2 layout ${type}: fields end at ${next - 1}, expected ${RECORD_LENGTH}`);
  return { type, fields };
}

const ID: Spec = ['recordIdentifier', 1, 2, 'A', REQUIRED];

/** Address block of RE and RW: the same fields at different offsets. */
function address(prefix: string, at: number, blankAt: number, blankLength: number, foreignAt: number): Spec[] {
  const p = (name: string) => (prefix ? `${prefix}${name[0]!.toUpperCase()}${name.slice(1)}` : name);
  return [
    [p('locationAddress'), at, 22, 'A'],
    [p('deliveryAddress'), at + 22, 22, 'A'],
    [p('city'), at + 44, 22, 'A'],
    [p('state'), at + 66, 2, 'A'],
    [p('zip'), at + 68, 5, 'N', BLANKABLE],
    [p('zipExtension'), at + 73, 4, 'N', BLANKABLE],
    ...(blankLength ? ([['blank', blankAt, blankLength, 'B']] as Spec[]) : []),
    [p('foreignState'), foreignAt, 23, 'A'],
    [p('foreignPostalCode'), foreignAt + 23, 15, 'A'],
    [p('country'), foreignAt + 38, 2, 'A'],
  ];
}

export const RA = layout('RA', [
  ID,
  ['submitterEin', 3, 9, 'N', REQUIRED],
  ['userId', 12, 8, 'A', REQUIRED],
  ['softwareVendorCode', 20, 4, 'N', BLANKABLE],
  ['blank', 24, 5, 'B'],
  ['resubIndicator', 29, 1, 'A', FLAG],
  ['resubWfid', 30, 6, 'A'],
  ['softwareCode', 36, 2, 'A', { values: ['98', '99'] }],
  ['companyName', 38, 57, 'A', REQUIRED],
  ...address('company', 95, 172, 5, 177),
  ['submitterName', 217, 57, 'A', REQUIRED],
  ...address('submitter', 274, 351, 5, 356),
  ['contactName', 396, 27, 'A', REQUIRED],
  ['contactPhone', 423, 15, 'N', { required: true, leftJustified: true }],
  ['contactPhoneExtension', 438, 5, 'N', BLANKABLE],
  ['blank', 443, 3, 'B'],
  ['contactEmail', 446, 40, 'A', EMAIL],
  ['blank', 486, 3, 'B'],
  ['contactFax', 489, 10, 'N', BLANKABLE],
  ['blank', 499, 1, 'B'],
  ['preparerCode', 500, 1, 'A', { values: ['A', 'L', 'S', 'P', 'O'] }],
  ['blank', 501, 12, 'B'],
]);

export const RE = layout('RE', [
  ID,
  ['taxYear', 3, 4, 'N', REQUIRED],
  ['agentIndicatorCode', 7, 1, 'A', { values: ['', '1', '2', '3'] }],
  ['ein', 8, 9, 'N', REQUIRED],
  ['agentForEin', 17, 9, 'N', BLANKABLE],
  ['terminatingBusinessIndicator', 26, 1, 'A', FLAG],
  ['establishmentNumber', 27, 4, 'A'],
  ['otherEin', 31, 9, 'N', BLANKABLE],
  ['employerName', 40, 57, 'A', REQUIRED],
  ['locationAddress', 97, 22, 'A'],
  ['deliveryAddress', 119, 22, 'A'],
  ['city', 141, 22, 'A'],
  ['state', 163, 2, 'A'],
  ['zip', 165, 5, 'N', BLANKABLE],
  ['zipExtension', 170, 4, 'N', BLANKABLE],
  ['kindOfEmployer', 174, 1, 'A', { values: ['F', 'S', 'T', 'Y', 'N'] }],
  ['blank', 175, 4, 'B'],
  ['foreignState', 179, 23, 'A'],
  ['foreignPostalCode', 202, 15, 'A'],
  ['country', 217, 2, 'A'],
  ['employmentCode', 219, 1, 'A', { values: ['A', 'H', 'M', 'Q', 'X', 'F', 'R'] }],
  ['taxJurisdictionCode', 220, 1, 'A', { values: ['', 'V', 'G', 'S', 'N', 'P'] }],
  ['thirdPartySickPayIndicator', 221, 1, 'A', FLAG],
  ['contactName', 222, 27, 'A'],
  ['contactPhone', 249, 15, 'N', { blankable: true, leftJustified: true }],
  ['contactPhoneExtension', 264, 5, 'N', BLANKABLE],
  ['contactFax', 269, 10, 'N', BLANKABLE],
  ['contactEmail', 279, 40, 'A', EMAIL],
  ['blank', 319, 194, 'B'],
]);

/** RW money fields in file order; RT repeats them by name in another order. */
export const RW = layout('RW', [
  ID,
  ['ssn', 3, 9, 'N', { sensitive: true }],
  ['firstName', 12, 15, 'A', REQUIRED],
  ['middleName', 27, 15, 'A'],
  ['lastName', 42, 20, 'A', REQUIRED],
  ['suffix', 62, 4, 'A'],
  ...address('', 66, 143, 5, 148),
  ['wages', 188, 11, 'M'],
  ['federalIncomeTax', 199, 11, 'M'],
  ['socialSecurityWages', 210, 11, 'M'],
  ['socialSecurityTax', 221, 11, 'M'],
  ['medicareWages', 232, 11, 'M'],
  ['medicareTax', 243, 11, 'M'],
  ['socialSecurityTips', 254, 11, 'M'],
  ['blank', 265, 11, 'B'],
  ['dependentCareBenefits', 276, 11, 'M'],
  ['deferred401k', 287, 11, 'M'],
  ['deferred403b', 298, 11, 'M'],
  ['deferred408k6', 309, 11, 'M'],
  ['deferred457b', 320, 11, 'M'],
  ['deferred501c18D', 331, 11, 'M'],
  ['blank', 342, 11, 'B'],
  ['nonqualifiedPlan457', 353, 11, 'M'],
  ['employerHsa', 364, 11, 'M'],
  ['nonqualifiedPlanNot457', 375, 11, 'M'],
  ['nontaxableCombatPay', 386, 11, 'M'],
  ['blank', 397, 11, 'B'],
  ['groupTermLife', 408, 11, 'M'],
  ['nonstatutoryStockOptions', 419, 11, 'M'],
  ['deferred409A', 430, 11, 'M'],
  ['roth401k', 441, 11, 'M'],
  ['roth403b', 452, 11, 'M'],
  ['employerHealthCoverage', 463, 11, 'M'],
  ['qsehra', 474, 11, 'M'],
  ['blank', 485, 1, 'B'],
  ['statutoryEmployeeIndicator', 486, 1, 'A', FLAG],
  ['blank', 487, 1, 'B'],
  ['retirementPlanIndicator', 488, 1, 'A', FLAG],
  ['thirdPartySickPayIndicator', 489, 1, 'A', FLAG],
  ['blank', 490, 23, 'B'],
]);

export const RO = layout('RO', [
  ID,
  ['blank', 3, 9, 'B'],
  ['allocatedTips', 12, 11, 'M'],
  ['uncollectedTaxOnTips', 23, 11, 'M'],
  ['archerMsa', 34, 11, 'M'],
  ['simple', 45, 11, 'M'],
  ['adoptionBenefits', 56, 11, 'M'],
  ['uncollectedSsTaxOnGtl', 67, 11, 'M'],
  ['uncollectedMedicareTaxOnGtl', 78, 11, 'M'],
  ['income409A', 89, 11, 'M'],
  ['blank', 100, 11, 'B'],
  ['roth457b', 111, 11, 'M'],
  ['qualifiedEquityGrants', 122, 11, 'M'],
  ['aggregateDeferrals83i', 133, 11, 'M'],
  ['medicaidWaiverPayments', 144, 11, 'M'],
  ['blank', 155, 120, 'B'],
  ['prWages', 275, 11, 'M'],
  ['prCommissions', 286, 11, 'M'],
  ['prAllowances', 297, 11, 'M'],
  ['prTips', 308, 11, 'M'],
  ['prTotalWages', 319, 11, 'M'],
  ['prTaxWithheld', 330, 11, 'M'],
  ['prRetirementContributions', 341, 11, 'M'],
  ['blank', 352, 11, 'B'],
  ['territoryWages', 363, 11, 'M'],
  ['territoryTaxWithheld', 374, 11, 'M'],
  ['blank', 385, 128, 'B'],
]);

/** State record: only the parts every state shares are checked; the rest is state-defined. */
export const RS = layout('RS', [
  ID,
  ['stateCode', 3, 2, 'N', REQUIRED],
  ['taxingEntityCode', 5, 5, 'A', { stateDefined: true }],
  ['ssn', 10, 9, 'N', { sensitive: true }],
  ['stateData', 19, 494, 'A', { stateDefined: true }],
]);

export const RT = layout('RT', [
  ID,
  ['numberOfRw', 3, 7, 'N', REQUIRED],
  ['wages', 10, 15, 'M'],
  ['federalIncomeTax', 25, 15, 'M'],
  ['socialSecurityWages', 40, 15, 'M'],
  ['socialSecurityTax', 55, 15, 'M'],
  ['medicareWages', 70, 15, 'M'],
  ['medicareTax', 85, 15, 'M'],
  ['socialSecurityTips', 100, 15, 'M'],
  ['blank', 115, 15, 'B'],
  ['dependentCareBenefits', 130, 15, 'M'],
  ['deferred401k', 145, 15, 'M'],
  ['deferred403b', 160, 15, 'M'],
  ['deferred408k6', 175, 15, 'M'],
  ['deferred457b', 190, 15, 'M'],
  ['deferred501c18D', 205, 15, 'M'],
  ['blank', 220, 15, 'B'],
  ['nonqualifiedPlan457', 235, 15, 'M'],
  ['employerHsa', 250, 15, 'M'],
  ['nonqualifiedPlanNot457', 265, 15, 'M'],
  ['nontaxableCombatPay', 280, 15, 'M'],
  ['employerHealthCoverage', 295, 15, 'M'],
  ['groupTermLife', 310, 15, 'M'],
  // No RW counterpart: third-party sick pay recap filings report it here only.
  ['thirdPartySickPayIncomeTax', 325, 15, 'M'],
  ['nonstatutoryStockOptions', 340, 15, 'M'],
  ['deferred409A', 355, 15, 'M'],
  ['roth401k', 370, 15, 'M'],
  ['roth403b', 385, 15, 'M'],
  ['qsehra', 400, 15, 'M'],
  ['blank', 415, 98, 'B'],
]);

export const RU = layout('RU', [
  ID,
  ['numberOfRo', 3, 7, 'N', REQUIRED],
  ['allocatedTips', 10, 15, 'M'],
  ['uncollectedTaxOnTips', 25, 15, 'M'],
  ['archerMsa', 40, 15, 'M'],
  ['simple', 55, 15, 'M'],
  ['adoptionBenefits', 70, 15, 'M'],
  ['uncollectedSsTaxOnGtl', 85, 15, 'M'],
  ['uncollectedMedicareTaxOnGtl', 100, 15, 'M'],
  ['income409A', 115, 15, 'M'],
  ['blank', 130, 15, 'B'],
  ['roth457b', 145, 15, 'M'],
  ['qualifiedEquityGrants', 160, 15, 'M'],
  ['aggregateDeferrals83i', 175, 15, 'M'],
  ['medicaidWaiverPayments', 190, 15, 'M'],
  ['blank', 205, 150, 'B'],
  ['prWages', 355, 15, 'M'],
  ['prCommissions', 370, 15, 'M'],
  ['prAllowances', 385, 15, 'M'],
  ['prTips', 400, 15, 'M'],
  ['prTotalWages', 415, 15, 'M'],
  ['prTaxWithheld', 430, 15, 'M'],
  ['prRetirementContributions', 445, 15, 'M'],
  ['territoryWages', 460, 15, 'M'],
  ['territoryTaxWithheld', 475, 15, 'M'],
  ['blank', 490, 23, 'B'],
]);

export const RV = layout('RV', [ID, ['stateData', 3, 510, 'A', { stateDefined: true }]]);

export const RF = layout('RF', [ID, ['blank', 3, 5, 'B'], ['numberOfRw', 8, 9, 'N', REQUIRED], ['blank', 17, 496, 'B']]);

export const LAYOUTS: Readonly<Record<RecordType, Layout>> = { RA, RE, RW, RO, RS, RT, RU, RV, RF };

/** Looks a field up by name; throws on a typo so a renamed field cannot be silently skipped. */
export function field(layout: Layout, name: string): Field {
  const f = layout.fields.find((x) => x.name === name);
  if (!f) throw new Error(`EFW2 layout ${layout.type} has no field '${name}'`);
  return f;
}

/** The money fields of a record, by name. */
export const moneyFields = (layout: Layout): readonly Field[] => layout.fields.filter((f) => f.kind === 'M');
