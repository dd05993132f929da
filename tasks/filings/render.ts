import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PermanentError } from '../../core/errors.ts';
import { PRIVATE_FILE_MODE } from '../../core/private-files.ts';
import type { FilingEmployee, FilingPeriod, Jurisdiction, Money, RenderTotals } from '../../jurisdictions/types.ts';
import { MoneySums } from './money.ts';
import { generatedAtOf } from './period.ts';
import { readJsonLines } from './staging.ts';
import { filingLabel, type Rendered, type Validated } from './types.ts';

/**
 * Renders the valid records into the jurisdiction's file, in staging, hashing the bytes as they
 * are written. The totals the renderer says it wrote must be the records' own sums: a renderer
 * that disagrees with its input fails the filing here, before any file looks finished.
 */

export interface RenderOptions {
  jurisdiction: Jurisdiction;
  period: FilingPeriod;
  validated: Validated;
  test: boolean;
}

export async function renderFiling(options: RenderOptions): Promise<Rendered> {
  const { jurisdiction: j, period, validated: v } = options;
  const employer = v.employer;
  if (!employer) throw new Error(`${filingLabel(v.item)}: no employer to render for`);
  const fileName = j.fileName(period);
  const renderedFile = path.join(v.dir, fileName);
  const part = `${renderedFile}.part`;
  const generatedAt = generatedAtOf(period);

  const sums = new MoneySums();
  let count = 0;
  async function* counted(): AsyncGenerator<FilingEmployee> {
    for await (const e of readJsonLines<FilingEmployee>(v.validFile)) {
      sums.add(e.period);
      count++;
      yield e;
    }
  }

  const hash = createHash('sha256');
  let bytes = 0;
  const hasher = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const piping = pipeline(hasher, createWriteStream(part, { mode: PRIVATE_FILE_MODE }));
  // Observed at once: a disk error while the renderer is still writing must not go unhandled.
  piping.catch(() => undefined);
  let totals: RenderTotals;
  try {
    totals = await j.render({ employer, submitter: v.submitter, period, generatedAt, test: options.test }, counted(), hasher);
    // Renderers leave the stream open: ending it is the caller's, once the totals are back.
    hasher.end();
    await piping;
  } catch (err) {
    hasher.destroy();
    await piping.catch(() => undefined);
    await rm(part, { force: true });
    throw err;
  }

  const disagreements = checkTotals(j, totals, count, sums.sums);
  if (disagreements.length) {
    await rm(part, { force: true });
    throw new PermanentError(`${filingLabel(v.item)}: the rendered totals disagree with the records, so no file is kept: ${disagreements.join('; ')}`);
  }
  await rename(part, renderedFile);
  return {
    ...v,
    renderedFile,
    fileName,
    sha256: hash.digest('hex'),
    bytes,
    totals,
    recordSums: sums.sums,
    generatedAt: generatedAt.toISOString(),
    test: options.test,
  };
}

/** The file's record count and each total that is a plain sum, against the records' own sums. */
export function checkTotals(j: Jurisdiction, totals: RenderTotals, records: number, sums: Money): string[] {
  const out: string[] = [];
  if (totals.records !== records) out.push(`records: the file states ${totals.records}, ${records} were rendered`);
  for (const [key, field] of Object.entries(j.recordTotals)) {
    const stated = totals.money[key] ?? 0;
    if (stated !== sums[field]) out.push(`${key}: the file states ${stated}, the records' ${field} add up to ${sums[field]}`);
  }
  return out;
}
