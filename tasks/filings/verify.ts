import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { PermanentError } from '../../core/errors.ts';
import type { Jurisdiction, RenderTotals } from '../../jurisdictions/types.ts';
import { filingLabel, type Rendered, type Verified } from './types.ts';

/**
 * Reads the rendered file back as the authority would, with the jurisdiction's own file
 * validator, and holds it against what rendering recorded for the manifest: the record count,
 * every total, the bytes and their sha256. Any violation or difference fails the filing.
 */

const SHOWN = 20;

export async function verifyFiling(j: Jurisdiction, r: Rendered): Promise<Verified> {
  const label = filingLabel(r.item);
  const { sha256, bytes } = await digest(r.renderedFile);
  if (sha256 !== r.sha256 || bytes !== r.bytes) {
    throw new PermanentError(
      `${label}: ${r.fileName} changed after rendering (sha256 ${sha256.slice(0, 12)}, ${bytes} bytes; rendered ${r.sha256.slice(0, 12)}, ${r.bytes} bytes)`,
    );
  }
  const { totals, violations } = await j.validateFile(r.renderedFile);
  if (violations.length) {
    const shown = violations.slice(0, SHOWN).map((v) => `${v.record} ${v.field} (${v.rule}): ${v.message}`);
    const more = violations.length > SHOWN ? `; and ${violations.length - SHOWN} more` : '';
    throw new PermanentError(`${label}: ${r.fileName} fails ${j.code} file validation with ${violations.length} violations: ${shown.join('; ')}${more}`);
  }
  const differences = compareTotals(r.totals, totals);
  for (const [key, field] of Object.entries(j.recordTotals)) {
    const stated = totals.money[key] ?? 0;
    if (stated !== r.recordSums[field]) differences.push(`${key}: the file states ${stated}, the records' ${field} add up to ${r.recordSums[field]}`);
  }
  if (differences.length) throw new PermanentError(`${label}: ${r.fileName} does not state what was rendered: ${differences.join('; ')}`);
  return { ...r, fileTotals: totals };
}

/** Rendered against read-back totals; a total one side leaves out counts as zero (an omitted blank box). */
export function compareTotals(rendered: RenderTotals, read: RenderTotals): string[] {
  const out: string[] = [];
  if (rendered.records !== read.records) out.push(`records: rendered ${rendered.records}, the file states ${read.records}`);
  for (const key of new Set([...Object.keys(rendered.money), ...Object.keys(read.money)])) {
    const a = rendered.money[key] ?? 0;
    const b = read.money[key] ?? 0;
    if (a !== b) out.push(`${key}: rendered ${a}, the file states ${b}`);
  }
  return out;
}

export async function digest(file: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      hash.update(chunk);
      bytes += chunk.length;
    }
  });
  return { sha256: hash.digest('hex'), bytes };
}
