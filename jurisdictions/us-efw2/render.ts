import type { Writable } from 'node:stream';
import { PermanentError } from '../../core/errors.ts';
import { ChunkWriter, ownRecords } from '../common.ts';
import type { FilingEmployee, RenderInput, RenderTotals } from '../types.ts';
import { SUPPORTED_TAX_YEARS } from './amounts.ts';
import { RA, RE, RF, RT, RW, moneyFields } from './layout.ts';
import { RW_FILLED, TOTALLED, employeeFields, employerFields, finalFields, submitterFields, totalFields } from './mapping.ts';
import { RecordFormatError, recordWriter } from './record.ts';

/**
 * Streams one employer's EFW2 file: RA, RE, one RW per employee, RT, RF. Each record is
 * formatted on its own and handed to the ChunkWriter, so memory does not grow with the
 * number of employees. Nothing in the file depends on the clock, so a re-render of the same
 * input is byte-identical.
 */

const CRLF = '\r\n';
const writeRA = recordWriter(RA);
const writeRE = recordWriter(RE);
const writeRW = recordWriter(RW, RW_FILLED);
const writeRT = recordWriter(RT);
const writeRF = recordWriter(RF);

export async function render(input: RenderInput, employees: AsyncIterable<FilingEmployee>, out: Writable): Promise<RenderTotals> {
  const taxYear = input.period.taxYear;
  if (!SUPPORTED_TAX_YEARS.includes(taxYear)) {
    throw new PermanentError(`EFW2: tax year ${taxYear} is not supported (layout of Pub. 42-007 for ${SUPPORTED_TAX_YEARS.join(', ')})`);
  }
  const w = new ChunkWriter(out);
  await w.write(writeRA(submitterFields(input.submitter, input.employer)) + CRLF);
  await w.write(writeRE(employerFields(input.employer, input.submitter, taxYear)) + CRLF);

  // Unfilled RW money fields are written as zeros, so only the filled ones can add to a total.
  const summed = TOTALLED.filter((name) => (RW_FILLED as readonly string[]).includes(name)) as (typeof RW_FILLED)[number][];
  const sums = summed.map(() => 0);
  let count = 0;
  for await (const employee of ownRecords(input.employer, employees)) {
    const values = employeeFields(employee, taxYear);
    let line: string;
    try {
      line = writeRW(values);
    } catch (err) {
      if (err instanceof RecordFormatError) throw new RecordFormatError(`worker ${employee.workerId}: ${err.message}`, { cause: err });
      throw err;
    }
    // Sum what was written, so the RT totals are the sum of the RW fields by construction.
    for (let i = 0; i < summed.length; i++) sums[i]! += values[summed[i]!] as number;
    count++;
    await w.write(line + CRLF);
  }

  // Every RT money field, as the RT record states it: the RW sums, zero for the rest.
  const totals: Record<string, number> = Object.fromEntries(moneyFields(RT).map((f) => [f.name, 0]));
  summed.forEach((name, i) => (totals[name] = sums[i]!));
  await w.write(writeRT(totalFields(count, totals)) + CRLF);
  await w.write(writeRF(finalFields(count)) + CRLF);
  await w.flush();
  return { records: count, money: totals };
}
