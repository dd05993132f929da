import type { Jurisdiction } from '../types.ts';
import { periods } from './calendar.ts';
import { validateEmployee, validateEmployerAndSubmitter } from './rules.ts';

/** CRA T4 slips and T4 Summary in XML, under a T619 electronic transmittal (see README.md). */
const caT4: Jurisdiction = {
  code: 'ca-t4',
  title: 'CRA T4 Statement of Remuneration Paid (XML, T619 transmittal)',
  country: 'CA',
  spec: {
    name: 'CRA T619 Electronic Transmittal and T4 XML specifications 2026V4, XML schema package xmlschm1-26-3',
    version: '1.26',
    url: 'https://www.canada.ca/en/revenue-agency/services/e-services/filing-information-returns-electronically-t4-t5-other-types-returns-overview/t619-2026/t4-2026.html',
  },
  recordTotals: { employmentIncome: 'gross', incomeTax: 'incomeTax' },
  fileName: (period) => `T4-${period.id}.xml`,
  periods,
  validateEmployer: validateEmployerAndSubmitter,
  validate: validateEmployee,
  render: async (...args) => (await import('./render.ts')).renderT4(...args),
  validateFile: async (path) => (await import('./validate-file.ts')).validateT4File(path),
};

export default caT4;
