import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { PermanentError } from '../../core/errors.ts';
import { PRIVATE_FILE_MODE } from '../../core/private-files.ts';
import { ChunkWriter, ownRecords } from '../../jurisdictions/common.ts';
import type { FilingEmployee, FilingPeriod, Jurisdiction, Submitter, Violation } from '../../jurisdictions/types.ts';
import { readJsonLines, writeJsonLines } from './staging.ts';
import { filingLabel, type Extracted, type Validated } from './types.ts';

/**
 * Applies the jurisdiction's rules: the employer's (any violation stops the whole filing) and
 * each record's (a record that breaks one goes to the rejects, the others go on). Records pass
 * the tenant check first, so a record of another tenant stops the filing even when a rule would
 * have rejected it anyway: a cross-tenant record is an incident, not a reject.
 */

export interface ValidateOptions {
  jurisdiction: Jurisdiction;
  period: FilingPeriod;
  extracted: Extracted;
  submitter: Submitter;
  /** Receives violations in batches as they are found (the store's rejects table). */
  onRejects?: (violations: Violation[]) => Promise<void>;
}

const REJECT_BATCH = 500;

export const rejectLine = (v: Violation) => `${JSON.stringify({ record: v.record, field: v.field, rule: v.rule, message: v.message })}\n`;

export async function validateFiling(options: ValidateOptions): Promise<Validated> {
  const { jurisdiction: j, period, extracted, submitter } = options;
  const employer = extracted.employer;
  if (!employer || !extracted.recordsFile) throw new Error(`${filingLabel(extracted.item)}: nothing was extracted to validate`);

  const employerViolations = j.validateEmployer(employer, submitter);
  if (employerViolations.length) {
    await options.onRejects?.(employerViolations);
    const list = employerViolations.map((v) => `${v.record} ${v.field} (${v.rule}): ${v.message}`).join('; ');
    throw new PermanentError(`${filingLabel(extracted.item)}: the employer or submitter breaks ${j.code} rules, so nothing is filed: ${list}`);
  }

  const validFile = path.join(extracted.dir, 'valid.jsonl.gz');
  const rejectsFile = path.join(extracted.dir, 'rejects.jsonl');
  const rejectsPart = `${rejectsFile}.part`;
  const out = createWriteStream(rejectsPart, { mode: PRIVATE_FILE_MODE });
  const rejects = new ChunkWriter(out);
  // The records refused at extract come first: the rejects file accounts for every worker left out.
  // (Absent from an extract staged by an earlier version: none then.)
  let rejected = extracted.extractRejected ?? 0;
  let violations = extracted.extractViolations ?? 0;
  let pending: Violation[] = [];

  async function* passing(): AsyncGenerator<FilingEmployee> {
    for await (const e of ownRecords(employer!, readJsonLines<FilingEmployee>(extracted.recordsFile!))) {
      const found = j.validate(e, period);
      if (!found.length) {
        yield e;
        continue;
      }
      rejected++;
      violations += found.length;
      for (const v of found) await rejects.write(rejectLine(v));
      pending.push(...found);
      if (pending.length >= REJECT_BATCH) {
        const batch = pending;
        pending = [];
        await options.onRejects?.(batch);
      }
    }
  }

  let valid: number;
  try {
    if (rejected) for await (const chunk of createReadStream(extracted.extractRejectsFile, 'utf8')) await rejects.write(chunk as string);
    valid = await writeJsonLines(validFile, passing());
    if (pending.length) await options.onRejects?.(pending);
    await rejects.flush();
    out.end();
    await finished(out);
    await rename(rejectsPart, rejectsFile);
  } catch (err) {
    out.destroy();
    await rm(rejectsPart, { force: true });
    throw err;
  }
  if (valid === 0 && extracted.records > 0) {
    throw new PermanentError(
      `${filingLabel(extracted.item)}: all ${extracted.records} records the extract passed break ${j.code} rules (${violations} violations, see the rejects); there is nothing to file`,
    );
  }
  return { ...extracted, submitter, validFile, valid, rejected, violations, rejectsFile };
}
