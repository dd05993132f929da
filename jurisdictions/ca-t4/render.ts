import type { Writable } from 'node:stream';
import { XMLBuilder } from 'fast-xml-parser';
import { PermanentError } from '../../core/errors.ts';
import { ChunkWriter, decimal, ownRecords } from '../common.ts';
import type { FilingEmployee, RenderInput, RenderTotals } from '../types.ts';
import { maxText } from './amounts.ts';
import { RETURN_CLOSE, RETURN_OPEN, SUBMISSION_OPEN } from './layout.ts';
import { addToSums, emptySums, moneyTotals, overflowingTotal, ratesFor, slipOf, summaryOf, summaryTotals, transmittal, type SlipSums } from './mapping.ts';

/**
 * Streams a Submission: T619 transmittal, one Return holding the T4 slips, then the T4 Summary
 * with the totals of the slips written. Each record is built on its own by the XML builder and
 * written on its own line, so memory stays flat and a line number in a schema error names a slip.
 */

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' };

// One test per value instead of the builder's five replace passes: most values need no escaping.
function escapeText(_name: string, value: unknown): unknown {
  return typeof value === 'string' && /[&<>'"]/.test(value) ? value.replace(/[&<>'"]/g, (c) => ESCAPES[c]!) : value;
}

// format: false keeps a record on one line. jPath: false (an option of the underlying
// fast-xml-builder that fast-xml-parser's typings omit) spares a path string per element.
const options = { format: false, processEntities: false, tagValueProcessor: escapeText, jPath: false };
const builder = new XMLBuilder(options);

export async function renderT4(input: RenderInput, employees: AsyncIterable<FilingEmployee>, out: Writable): Promise<RenderTotals> {
  const { employer, submitter, period } = input;
  const rates = ratesFor(period);
  if (!rates) throw new PermanentError(`ca-t4: tax year ${period.taxYear} is not supported (this plugin files tax year 2025 with CRA schema edition 1.26)`);
  // Built before any slip, so a transmittal problem fails the render before anything is written.
  const head = `${SUBMISSION_OPEN}${builder.build({ T619: transmittal(employer, submitter, period, input.test) })}\n${RETURN_OPEN}`;

  const writer = new ChunkWriter(out);
  const sums = emptySums();
  let count = 0;
  for await (const employee of ownRecords(employer, employees)) {
    const { slip, amounts } = slipOf(employee, employer, rates);
    // The head waits for the first slip: a T4 return without slips is not a valid file.
    await writer.write(count === 0 ? `${head}${builder.build({ T4Slip: slip })}\n` : `${builder.build({ T4Slip: slip })}\n`);
    addToSums(sums, amounts);
    count++;
    // Checked now and then rather than at the end, so an oversized return fails early.
    if (count % 1024 === 0) failOnOverflow(sums, input);
  }
  if (count === 0)
    throw new PermanentError(`ca-t4: no T4 slips for ${employer.orgId} in ${period.id}: a T4 return needs at least one slip, nothing was written`);

  failOnOverflow(sums, input);
  const totals = summaryTotals(sums);
  await writer.write(`${builder.build({ T4Summary: summaryOf(employer, submitter, period, count, totals) })}\n${RETURN_CLOSE}`);
  await writer.flush();
  return { records: count, money: moneyTotals(totals) };
}

/**
 * T4_TAMT elements hold at most 9 or 11 whole-dollar digits: past that a single return cannot
 * state the totals, and the employer's slips must go in several submissions.
 */
function failOnOverflow(sums: SlipSums, input: RenderInput): void {
  const over = overflowingTotal(sums);
  if (over) {
    throw new PermanentError(
      `ca-t4: ${input.employer.orgId} ${input.period.id}: the T4 Summary's ${over.element} would reach ${decimal(over.cents)}, above the ${maxText(over.element)} CRA's schema holds: file the slips in several submissions`,
    );
  }
}
