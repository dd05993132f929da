import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { PermanentError } from '../core/errors.ts';
import type { FilingEmployee, FilingEmployer } from './types.ts';

/** Helpers every renderer uses: tenant isolation, exact money text, back-pressured writes. */

/** A record of another tenant or employer reached a renderer: a compliance incident, never a file. */
export class TenantViolationError extends PermanentError {}

/**
 * Passes the employer's own records through and throws at the first that belongs to another
 * tenant or employer. Renderers iterate through this, so the check sits where records are written.
 */
export async function* ownRecords(employer: FilingEmployer, employees: AsyncIterable<FilingEmployee>): AsyncGenerator<FilingEmployee> {
  for await (const e of employees) {
    if (e.tenantId !== employer.tenantId || e.orgId !== employer.orgId) {
      throw new TenantViolationError(
        `worker ${e.workerId} belongs to tenant '${e.tenantId}' org ${e.orgId}, not to the filing's tenant '${employer.tenantId}' org ${employer.orgId}: nothing was written`,
      );
    }
    yield e;
  }
}

/** Minor units as a decimal string with two places: 123456 -> '1234.56', -5 -> '-0.05'. */
export function decimal(minor: number): string {
  if (!Number.isSafeInteger(minor)) throw new RangeError(`money must be a whole number of minor units, got ${minor}`);
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  return `${sign}${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** Collects text into ~256 KiB chunks and writes them with back-pressure: flat memory, few syscalls. */
export class ChunkWriter {
  private parts: string[] = [];
  private size = 0;
  constructor(
    private readonly out: Writable,
    private readonly chunkChars = 256 * 1024,
  ) {}

  async write(text: string): Promise<void> {
    this.parts.push(text);
    this.size += text.length;
    if (this.size >= this.chunkChars) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.parts.length) return;
    const chunk = this.parts.join('');
    this.parts = [];
    this.size = 0;
    if (!this.out.write(chunk)) await once(this.out, 'drain');
  }
}

/**
 * Index of the record whose lines span `line`, in records sorted by line and not overlapping
 * (as a file's records are), or -1: how a validator names the record a parser error is in.
 */
export function recordSpanning<T>(records: readonly T[], line: number, first: (r: T) => number, last: (r: T) => number): number {
  let lo = 0;
  let hi = records.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = records[mid]!;
    if (line < first(r)) hi = mid - 1;
    else if (line > last(r)) lo = mid + 1;
    else return mid;
  }
  return -1;
}
