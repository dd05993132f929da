import type { Jurisdiction } from '../types.ts';
import { monthlyPeriods } from './calendar.ts';
import { validateEmployee, validateEmployer } from './validate.ts';

/** HMRC PAYE Real Time Information: the Full Payment Submission, one GovTalk message per tax month. */
const gbRtiFps: Jurisdiction = {
  code: 'gb-rti-fps',
  title: 'UK HMRC RTI Full Payment Submission (FPS)',
  country: 'GB',
  spec: {
    name: 'HMRC PAYE RTI Full Payment Submission schema and business rules (GovTalk envelope 2.0)',
    version: '2026-27 v1.0 (FullPaymentSubmission-2027-v1-0) and 2025-26 v1.0 (FullPaymentSubmission-2026-v1-0)',
    url: 'https://www.gov.uk/government/publications/real-time-information-internet-submissions-2026-to-2027-technical-specifications',
  },
  recordTotals: { taxablePay: 'gross', taxDeductedOrRefunded: 'incomeTax', employeeNics: 'employeeSocial', employerNics: 'employerSocial' },
  fileName: (period) => `FPS-${period.id}.xml`,
  periods: monthlyPeriods,
  validateEmployer: (employer) => validateEmployer(employer),
  validate: validateEmployee,
  render: async (...args) => (await import('./render.ts')).renderFps(...args),
  validateFile: async (path) => (await import('./validate-file.ts')).validateFpsFile(path),
};

export default gbRtiFps;
