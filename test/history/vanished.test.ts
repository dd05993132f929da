import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearTasks } from '../../server/engine/clear.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { approveDeletes } from '../../tasks/history/apply.ts';
import { type HistoryHarness, historyHarness, runNight } from './support.ts';
import { waitForRun } from '../support.ts';

/**
 * The leak check of tenants: a tenant the hub drops entirely is no scope any more, so no load
 * would ever touch its rows. The nightly run reports it, keeps its rows until an operator
 * approves, and then closes them as deleted; it is never kept current silently.
 */

let h: HistoryHarness;
let gone: string;

const wh = (table: string) => sql.raw(`${h.whSchema}.${table}`);
const TABLES_CHILD_FIRST = ['payroll_results', 'contracts', 'workers', 'orgs', 'clients'];

async function live(tenant: string): Promise<number> {
  let n = 0;
  for (const e of Object.values(HUB_ENTITIES).filter((x) => x.tenantColumn)) {
    const { rows } = await sql<{ n: string }>`select count(*) as n from ${wh(`${e.name}_current`)} where tenant_id = ${tenant}`.execute(h.rt.db);
    n += Number(rows[0]!.n);
  }
  return n;
}

beforeAll(async () => {
  h = await historyHarness({ tenants: 3, workers: 60, seed: 8 });
  expect((await runNight(h, '2026-04-01')).state).toBe('success');
  const { rows } = await sql<{ t: string }>`select min(tenant_id) as t from ${wh('clients_current')}`.execute(h.rt.db);
  gone = rows[0]!.t;
  for (const table of TABLES_CHILD_FIRST) await sql`delete from ${sql.raw(`${h.hubSchema}.${table}`)} where tenant_id = ${gone}`.execute(h.rt.db);
}, 120_000);

afterAll(() => h?.close());

describe('a tenant that vanished from the hub', () => {
  let runId: number;

  it('is reported and its rows are kept until approved: the load fails naming it and the command', async () => {
    const before = await live(gone);
    expect(before).toBeGreaterThan(0);
    const run = await runNight(h, '2026-04-02');
    runId = run.id;
    expect(run.state).toBe('failed');
    const failed = await h.rt.db
      .selectFrom('task_instances')
      .select(['task_id', 'state', 'error'])
      .where('run_id', '=', runId)
      .where('state', '=', 'failed')
      .execute();
    const error = (failed.find((f) => f.task_id === 'load')?.error as { message?: string } | null)?.message;
    expect(error).toContain(`'${gone}' (${before} live rows) stay current until approved`);
    expect(error).toContain(`hubflow history approve-deletes --tenant <tenant> --date 2026-04-02 --reason '...'`);
    const rejects = await h.rt.db
      .selectFrom('rejects')
      .select(['kind', 'tenant_id', 'rule', 'reason'])
      .where('run_id', '=', runId)
      .where('rule', '=', 'vanished')
      .execute();
    expect(rejects).toEqual([
      {
        kind: 'tenant',
        tenant_id: gone,
        rule: 'vanished',
        reason: `tenant vanished from the hub: its ${before} live rows are kept until an operator approves closing them`,
      },
    ]);
    expect(await live(gone)).toBe(before);
  });

  it('closes its rows as deleted once approved, and is no longer reported', async () => {
    await approveDeletes(await h.rt.connections.warehouse(), HUB_ENTITIES, {
      entity: '*',
      tenant: gone,
      logicalDate: '2026-04-02',
      approvedBy: 'test',
      reason: 'client left',
    });
    await clearTasks(h.rt.engine, runId, { tasks: ['load'] });
    expect((await waitForRun(h.rt, runId, 45_000)).state).toBe('success');
    expect(await live(gone)).toBe(0);
    const { rows } = await sql<{
      n: string;
    }>`select count(*) as n from ${wh('workers_history')} where tenant_id = ${gone} and is_current and is_deleted`.execute(h.rt.db);
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);
    const next = await runNight(h, '2026-04-03');
    expect(next.state).toBe('success');
    const again = await h.rt.db.selectFrom('rejects').select('tenant_id').where('run_id', '=', next.id).where('rule', '=', 'vanished').execute();
    expect(again).toEqual([]);
  });
});
