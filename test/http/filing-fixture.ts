import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Manifest } from '../../tasks/filings/manifest.ts';
import type { Runtime } from '../../server/runtime.ts';

export const SHA = (c: string) => c.repeat(64);
export const ITEMS = [
  { jurisdiction: 'us-efw2', period: '2025', tenant: 'acme' },
  { jurisdiction: 'gb-rti-fps', period: '2025-26-M09', tenant: 'globex' },
  { jurisdiction: 'ca-t4', period: '2025', tenant: 'initech' },
];

function manifest(item: (typeof ITEMS)[number], runId: number, sha256: string): Manifest {
  return {
    manifestVersion: 1,
    jurisdiction: item.jurisdiction,
    title: 'SSA EFW2',
    spec: { name: 'EFW2', version: 'TY2025' },
    period: { id: item.period, start: '2025-01-01', end: '2025-12-31', taxYear: '2025', payDate: null, deadline: '2026-02-02T05:00:00.000Z' },
    tenant: item.tenant,
    employer: { orgId: 'org-1', legalName: 'Acme Payroll Inc', taxId: '12-3456789', payrollRef: null, accountsOfficeRef: null },
    submitter: { name: 'Acme Payroll Inc', authorityId: 'ABCD1234' },
    file: { name: 'W2REPORT-2025.txt', sha256, bytes: 4096 },
    records: 41,
    rejected: 2,
    violations: 3,
    totals: { wages: 123456789, federalTax: 2345600 },
    recordSums: { gross: 123456789, incomeTax: 2345600, employeeSocial: 0, employerSocial: 0, net: 0 },
    test: true,
    hubSnapshotAt: '2026-01-01T06:00:00.000Z',
    generatedAt: '2026-01-01',
    runId,
  };
}

/**
 * What a filing cycle leaves in a run of a DAG with tasks plan, render and deliver (mapped):
 * the plan's items, one filing delivered on time, one late (and since re-filed by a later
 * run), one whose render failed; the outbox holds the manifests.
 */
export async function seedFilingRun(rt: Runtime, runId: number, outbox: string): Promise<void> {
  const dagId = (await rt.db.selectFrom('dag_runs').select('dag_id').where('id', '=', runId).executeTakeFirstOrThrow()).dag_id;
  await rt.db
    .updateTable('task_instances')
    .set({ state: 'success', result: JSON.stringify(ITEMS) })
    .where('run_id', '=', runId)
    .where('task_id', '=', 'plan')
    .execute();
  const delivered = (i: number, sha256: string, late: boolean) =>
    JSON.stringify({
      item: ITEMS[i],
      status: 'delivered',
      folder: '/elsewhere',
      records: 41,
      rejected: 2,
      sha256,
      deadline: '2026-02-02T05:00:00.000Z',
      late,
      replacedSha256: null,
    });
  await rt.db
    .insertInto('task_instances')
    .values([
      { run_id: runId, dag_id: dagId, task_id: 'render', map_index: 0, state: 'success', max_tries: 1 },
      { run_id: runId, dag_id: dagId, task_id: 'render', map_index: 1, state: 'success', max_tries: 1 },
      { run_id: runId, dag_id: dagId, task_id: 'render', map_index: 2, state: 'failed', max_tries: 1 },
      {
        run_id: runId,
        dag_id: dagId,
        task_id: 'deliver',
        map_index: 0,
        state: 'success',
        max_tries: 1,
        result: delivered(0, SHA('a'), false),
        ended_at: '2026-01-01T07:00:00Z',
      },
      {
        run_id: runId,
        dag_id: dagId,
        task_id: 'deliver',
        map_index: 1,
        state: 'success',
        max_tries: 1,
        result: delivered(1, SHA('b'), true),
        ended_at: '2026-01-01T07:01:00Z',
      },
      { run_id: runId, dag_id: dagId, task_id: 'deliver', map_index: 2, state: 'upstream_failed', max_tries: 1 },
    ])
    .execute();
  for (const [i, sha, run] of [
    [0, SHA('a'), runId],
    [1, SHA('c'), runId + 1000],
  ] as const) {
    const folder = path.join(outbox, ITEMS[i]!.jurisdiction, ITEMS[i]!.period, ITEMS[i]!.tenant);
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, 'manifest.json'), JSON.stringify(manifest(ITEMS[i]!, run, sha)));
  }
}
