import type { TaxCode } from './tax-code.ts';

/**
 * The FPS records as the filing holds them, in HMRC's terms. The mapping builds them from
 * canonical records, the renderer writes them, and the file validator reads them back, so the
 * same rules check what we are about to write and what any file says. Money is in pence; a
 * figure a file states in a form that cannot be read is null.
 */

export interface FpsName {
  readonly fore: readonly string[];
  readonly initials: string | null;
  readonly sur: string;
}

export interface FpsAddress {
  readonly lines: readonly string[];
  readonly ukPostcode: string | null;
  readonly foreignCountry: string | null;
}

/** One `NIlettersAndValues` group. */
export interface FpsNiLetter {
  readonly letter: string;
  readonly grossInPeriod: number | null;
  readonly grossYtd: number | null;
  readonly atLelYtd: number | null;
  readonly lelToPtYtd: number | null;
  readonly ptToUelYtd: number | null;
  /** Employer (secondary) NICs: TotalEmpNICInPd / TotalEmpNICYTD. */
  readonly employerInPeriod: number | null;
  readonly employerYtd: number | null;
  /** Employee (primary) NICs: EmpeeContribnsInPd / EmpeeContribnsYTD. */
  readonly employeeInPeriod: number | null;
  readonly employeeYtd: number | null;
}

export interface FpsEmployment {
  readonly payId: string | null;
  readonly workplacePostcode: string | null;
  readonly paymentToNonIndividual: boolean;
  readonly leavingDate: string | null;
  readonly taxablePayYtd: number | null;
  readonly totalTaxYtd: number | null;
  readonly payFrequency: string;
  readonly paymentDate: string;
  readonly monthNo: number | null;
  readonly periodsCovered: number;
  readonly paymentAfterLeaving: boolean;
  readonly hoursWorked: string;
  readonly taxCode: TaxCode;
  readonly taxablePay: number | null;
  readonly taxDeducted: number | null;
  readonly niLetters: readonly FpsNiLetter[];
}

export interface FpsEmployee {
  readonly nino: string | null;
  readonly name: FpsName;
  readonly address: FpsAddress | null;
  readonly birthDate: string | null;
  readonly gender: string;
  readonly employments: readonly FpsEmployment[];
}

/** What the envelope, IRheader and EmpRefs say about the employer. */
export interface FpsEmployer {
  readonly officeNo: string;
  readonly payeRef: string;
  readonly accountsOfficeRef: string;
  readonly corporationTaxRef: string | null;
}

/** Filing element paths, as violations of a file name them. */
export type FpsField =
  | 'EmployeeDetails/NINO'
  | 'EmployeeDetails/Name/Fore'
  | 'EmployeeDetails/Name/Sur'
  | 'EmployeeDetails/Address/Line'
  | 'EmployeeDetails/Address/UKPostcode'
  | 'EmployeeDetails/Address/ForeignCountry'
  | 'EmployeeDetails/BirthDate'
  | 'EmployeeDetails/Gender'
  | 'Employment/PayId'
  | 'Employment/LeavingDate'
  | 'Employment/FiguresToDate/TaxablePay'
  | 'Employment/FiguresToDate/TotalTax'
  | 'Employment/Payment/PayFreq'
  | 'Employment/Payment/PmtDate'
  | 'Employment/Payment/PmtAfterLeaving'
  | 'Employment/Payment/TaxCode'
  | 'Employment/Payment/TaxablePay'
  | 'Employment/Payment/TaxDeductedOrRefunded'
  | 'Employment/NIlettersAndValues/NIletter'
  | 'Employment/NIlettersAndValues/GrossEarningsForNICsInPd'
  | 'Employment/NIlettersAndValues/GrossEarningsForNICsYTD'
  | 'Employment/NIlettersAndValues/AtLELYTD'
  | 'Employment/NIlettersAndValues/LELtoPTYTD'
  | 'Employment/NIlettersAndValues/PTtoUELYTD'
  | 'Employment/NIlettersAndValues/TotalEmpNICInPd'
  | 'Employment/NIlettersAndValues/TotalEmpNICYTD'
  | 'Employment/NIlettersAndValues/EmpeeContribnsInPd'
  | 'Employment/NIlettersAndValues/EmpeeContribnsYTD';

/** A rule broken by a filing record, before it is tied to a worker id or a place in a file. */
export interface Issue {
  readonly field: FpsField;
  readonly rule: string;
  readonly message: string;
}
