import type { FilingEmployee, FilingEmployer, FilingPeriod, Violation } from '../types.ts';
import { accountsOfficeRefProblem, officeNoProblem, payeRefProblem, splitPayeReference, utrProblem } from '../../transforms/identifiers/paye.ts';
import { countryName, mapEmployee, mapEmployer, payFrequencyCode } from './mapping.ts';
import type { FpsField } from './record.ts';
import { employeeIssues } from './rules.ts';
import { TAX_YEARS, taxYearById } from './tax-years.ts';
import { quote } from './text.ts';

/** Canonical field each FPS field is built from: what a rejected record's violations name. */
const CANONICAL: Readonly<Record<FpsField, string>> = {
  'EmployeeDetails/NINO': 'nationalId',
  'EmployeeDetails/Name/Fore': 'givenName',
  'EmployeeDetails/Name/Sur': 'familyName',
  'EmployeeDetails/Address/Line': 'address',
  'EmployeeDetails/Address/UKPostcode': 'address.postcode',
  'EmployeeDetails/Address/ForeignCountry': 'address.country',
  'EmployeeDetails/BirthDate': 'birthDate',
  'EmployeeDetails/Gender': 'gender',
  'Employment/PayId': 'contractId',
  'Employment/LeavingDate': 'terminationDate',
  'Employment/FiguresToDate/TaxablePay': 'yearToDate.gross',
  'Employment/FiguresToDate/TotalTax': 'yearToDate.incomeTax',
  'Employment/Payment/PayFreq': 'payFrequency',
  'Employment/Payment/PmtDate': 'payDate',
  'Employment/Payment/PmtAfterLeaving': 'terminationDate',
  'Employment/Payment/TaxCode': 'taxCode',
  'Employment/Payment/TaxablePay': 'period.gross',
  'Employment/Payment/TaxDeductedOrRefunded': 'period.incomeTax',
  'Employment/NIlettersAndValues/NIletter': 'niCategory',
  'Employment/NIlettersAndValues/GrossEarningsForNICsInPd': 'period.gross',
  'Employment/NIlettersAndValues/GrossEarningsForNICsYTD': 'yearToDate.gross',
  'Employment/NIlettersAndValues/AtLELYTD': 'yearToDate.gross',
  'Employment/NIlettersAndValues/LELtoPTYTD': 'yearToDate.gross',
  'Employment/NIlettersAndValues/PTtoUELYTD': 'yearToDate.gross',
  'Employment/NIlettersAndValues/TotalEmpNICInPd': 'period.employerSocial',
  'Employment/NIlettersAndValues/TotalEmpNICYTD': 'yearToDate.employerSocial',
  'Employment/NIlettersAndValues/EmpeeContribnsInPd': 'period.employeeSocial',
  'Employment/NIlettersAndValues/EmpeeContribnsYTD': 'yearToDate.employeeSocial',
};

export function validateEmployer(employer: FilingEmployer): Violation[] {
  const violations: Violation[] = [];
  const add = (field: string, rule: string, message: string) => violations.push({ record: employer.orgId, field, rule, message });
  const refs = mapEmployer(employer);
  if (employer.country.toUpperCase() !== 'GB')
    add('country', 'employer.country', `employer country is ${quote(employer.country)}; the FPS is filed by UK (GB) employers`);

  if (!employer.payrollRef?.trim()) add('payrollRef', 'payeref.missing', 'the employer PAYE reference (e.g. 123/AB45678) is missing');
  else if (!splitPayeReference(employer.payrollRef))
    add('payrollRef', 'payeref.format', `PAYE reference ${quote(employer.payrollRef)} is not a tax office number, '/' and a reference`);
  else for (const p of [officeNoProblem(refs.officeNo), payeRefProblem(refs.payeRef)]) if (p) add('payrollRef', p.rule, p.message);

  if (!employer.accountsOfficeRef?.trim()) add('accountsOfficeRef', 'aoref.missing', 'the Accounts Office reference (e.g. 123PA00045678) is missing');
  else {
    const p = accountsOfficeRefProblem(refs.accountsOfficeRef);
    if (p) add('accountsOfficeRef', p.rule, p.message);
  }
  if (refs.corporationTaxRef !== null) {
    const p = utrProblem(refs.corporationTaxRef);
    if (p) add('taxId', p.rule, `Corporation Tax ${p.message}`);
  }
  return violations;
}

/** Problems of the canonical record that the FPS record would hide (nulls, unsupported values). */
function canonicalProblems(e: FilingEmployee, period: FilingPeriod): [field: string, rule: string, message: string][] {
  const problems: [string, string, string][] = [];
  if (countryName(e.address.country) === null)
    problems.push(['address.country', 'country.code', `address country ${quote(e.address.country)} is not an ISO 3166 two-letter country code`]);
  if (e.gender === null) problems.push(['gender', 'gender.missing', "gender is not recorded; the FPS requires M or F as on the person's tax record"]);
  if (e.payDate === null) problems.push(['payDate', 'paydate.missing', `nothing was paid in period ${period.id}, so there is no FPS payment to report`]);
  else if (e.payDate < period.start || e.payDate > period.end) {
    problems.push(['payDate', 'paydate.period', `pay date ${e.payDate} is outside period ${period.id} (${period.start} to ${period.end})`]);
  }
  if (payFrequencyCode(e.payFrequency) === null) {
    problems.push([
      'payFrequency',
      'payfrequency.unsupported',
      `pay frequency ${quote(e.payFrequency)} cannot be reported in monthly FPS periods (monthly, quarterly, half-yearly or annual pay only)`,
    ]);
  }
  if (!e.taxCode?.trim()) problems.push(['taxCode', 'taxcode.missing', 'the PAYE tax code is missing']);
  if (!e.niCategory?.trim()) problems.push(['niCategory', 'niletter.missing', 'the National Insurance category letter is missing']);
  return problems;
}

export function validateEmployee(e: FilingEmployee, period: FilingPeriod): Violation[] {
  const year = taxYearById(period.taxYear);
  if (!year) {
    return [
      {
        record: e.workerId,
        field: 'payDate',
        rule: 'taxyear.unsupported',
        message: `tax year ${period.taxYear} has no FPS schema here (supported: ${TAX_YEARS.map((y) => y.id).join(', ')})`,
      },
    ];
  }
  const violations: Violation[] = canonicalProblems(e, period).map(([field, rule, message]) => ({ record: e.workerId, field, rule, message }));
  const reported = new Set(violations.map((v) => v.field));
  const seen = new Set<string>();
  for (const issue of employeeIssues(mapEmployee(e, period, year), { year, today: period.end })) {
    const field = CANONICAL[issue.field];
    // A field already reported as missing, or one canonical figure feeding two FPS fields, is said once.
    if (reported.has(field) || seen.has(`${field} ${issue.rule}`)) continue;
    seen.add(`${field} ${issue.rule}`);
    violations.push({ record: e.workerId, field, rule: issue.rule, message: issue.message });
  }
  return violations;
}
