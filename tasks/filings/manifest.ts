import { z } from 'zod';
import type { FilingPeriod, Jurisdiction } from '../../jurisdictions/types.ts';
import type { Verified } from './types.ts';

/**
 * `manifest.json`, written last into a filing folder: a folder is finished if and only if it
 * has one. Everything in it but `runId` and `hubSnapshotAt` follows from the hub data and the
 * period, so a re-run on unchanged data differs in those two fields only.
 */

const money = z.object({
  gross: z.number().int(),
  incomeTax: z.number().int(),
  employeeSocial: z.number().int(),
  employerSocial: z.number().int(),
  net: z.number().int(),
});

export const manifestSchema = z.object({
  manifestVersion: z.literal(1),
  jurisdiction: z.string(),
  title: z.string(),
  spec: z.object({ name: z.string(), version: z.string() }),
  period: z.object({ id: z.string(), start: z.string(), end: z.string(), taxYear: z.string(), payDate: z.string().nullable(), deadline: z.string() }),
  tenant: z.string(),
  employer: z.object({
    orgId: z.string(),
    legalName: z.string(),
    taxId: z.string(),
    payrollRef: z.string().nullable(),
    accountsOfficeRef: z.string().nullable(),
  }),
  submitter: z.object({ name: z.string(), authorityId: z.string().nullable() }),
  file: z.object({ name: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().nonnegative() }),
  /** Records in the file (= the file's own count). */
  records: z.number().int().nonnegative(),
  /** Records held back by the jurisdiction's rules; their violations are in rejects.jsonl. */
  rejected: z.number().int().nonnegative(),
  violations: z.number().int().nonnegative(),
  /** Money totals in minor units, as the file's own totals state them (checked against the records). */
  totals: z.record(z.string(), z.number().int()),
  /** Sums of the canonical period figures over the records in the file, in minor units. */
  recordSums: money,
  test: z.boolean(),
  hubSnapshotAt: z.string(),
  generatedAt: z.string(),
  runId: z.number().int(),
});

export type Manifest = z.infer<typeof manifestSchema>;

export function periodJson(p: FilingPeriod): Manifest['period'] {
  return { id: p.id, start: p.start, end: p.end, taxYear: p.taxYear, payDate: p.payDate, deadline: p.deadline.toISOString() };
}

export function buildManifest(j: Jurisdiction, period: FilingPeriod, v: Verified, runId: number): Manifest {
  const e = v.employer!;
  return {
    manifestVersion: 1,
    jurisdiction: j.code,
    title: j.title,
    spec: { name: j.spec.name, version: j.spec.version },
    period: periodJson(period),
    tenant: v.item.tenant,
    employer: { orgId: e.orgId, legalName: e.legalName, taxId: e.taxId, payrollRef: e.payrollRef, accountsOfficeRef: e.accountsOfficeRef },
    submitter: { name: v.submitter.name, authorityId: v.submitter.authorityId },
    file: { name: v.fileName, sha256: v.sha256, bytes: v.bytes },
    records: v.fileTotals.records,
    rejected: v.rejected,
    violations: v.violations,
    totals: sortedKeys(v.fileTotals.money),
    recordSums: v.recordSums,
    test: v.test,
    hubSnapshotAt: v.snapshotAt,
    generatedAt: v.generatedAt,
    runId,
  };
}

function sortedKeys(o: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
