import type { Writable } from 'node:stream';
import { PermanentError } from '../../core/errors.ts';
import { ChunkWriter, ownRecords } from '../common.ts';
import type { FilingEmployee, RenderInput, RenderTotals } from '../types.ts';
import { mapEmployee, mapEmployer } from './mapping.ts';
import { TAX_YEARS, taxYearById } from './tax-years.ts';
import { addToTotals, emptyTotals } from './totals.ts';
import { employeeXml, envelopeXml } from './xml.ts';

/** Streams the GovTalk message: envelope head, one element per employee, envelope tail. */
export async function renderFps(input: RenderInput, employees: AsyncIterable<FilingEmployee>, out: Writable): Promise<RenderTotals> {
  const { employer, period } = input;
  const year = taxYearById(period.taxYear);
  if (!year) {
    throw new PermanentError(
      `gb-rti-fps: tax year ${period.taxYear} of period ${period.id} has no FPS schema here (supported: ${TAX_YEARS.map((y) => y.id).join(', ')})`,
    );
  }
  // The submitter is the employer unless an agent (the platform, a bureau) files for it.
  const sender = input.submitter.name.trim() === employer.legalName.trim() ? 'Employer' : 'Agent';
  const { head, tail } = envelopeXml({
    year,
    employer: mapEmployer(employer),
    periodEnd: period.end,
    test: input.test,
    sender,
    generatedAt: input.generatedAt,
    finalForYear: period.id.endsWith('-M12'),
  });

  const writer = new ChunkWriter(out);
  const totals = emptyTotals();
  let records = 0;
  await writer.write(head);
  for await (const e of ownRecords(employer, employees)) {
    const record = mapEmployee(e, period, year);
    await writer.write(employeeXml(record));
    addToTotals(totals, record);
    records++;
  }
  await writer.write(tail);
  await writer.flush();
  return { records, money: { ...totals } };
}
