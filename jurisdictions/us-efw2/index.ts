import type { Jurisdiction } from '../types.ts';
import { periods } from './calendar.ts';
import { validateEmployee, validateEmployerAndSubmitter } from './rules.ts';

/** SSA EFW2: the annual W-2 wage file US employers send to the Social Security Administration. */
const usEfw2: Jurisdiction = {
  code: 'us-efw2',
  title: 'US SSA EFW2 W-2 wage file',
  country: 'US',
  spec: {
    name: 'SSA Publication No. 42-007, Specifications for Filing Forms W-2 Electronically (EFW2)',
    version: 'Tax Year 2025',
    url: 'https://www.ssa.gov/employer/efw/25efw2.pdf',
  },
  recordTotals: { wages: 'gross', federalIncomeTax: 'incomeTax', medicareWages: 'gross' },
  fileName: (period) => `W2REPORT-${period.id}.txt`,
  periods,
  validateEmployer: validateEmployerAndSubmitter,
  validate: validateEmployee,
  render: async (...args) => (await import('./render.ts')).render(...args),
  validateFile: async (path) => (await import('./validate-file.ts')).validateFile(path),
};

export default usEfw2;
