import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { defineDag, task } from 'hubflow';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../server/http/server.ts';
import { testRuntime, type TestRuntime } from '../support.ts';
import { SHA, seedFilingRun } from './filing-fixture.ts';

const nothing = () => null;
const filing = defineDag({
  id: 'proofs-filing',
  schedule: { cron: '0 6 * * *', timezone: 'Europe/London' },
  deadline: '12h',
  tasks: {
    plan: task({ run: () => [] }),
    render: task({ map: 'plan', run: nothing }),
    deliver: task({ map: 'render', trigger: 'all_done', run: nothing }),
  },
});
const other = defineDag({
  id: 'proofs-other',
  schedule: { cron: '0 1 * * *', timezone: 'UTC' },
  window: { start: '01:00', end: '02:00' },
  tasks: { only: task({ run: nothing }) },
});

describe('what a run proves and refuses, on its pages', () => {
  let rt: TestRuntime;
  let app: FastifyInstance;
  let outbox: string;
  let runId: number;
  const get = (url: string) => app.inject({ method: 'GET', url });

  beforeAll(async () => {
    outbox = await mkdtemp(path.join(tmpdir(), 'hubflow-outbox-'));
    rt = await testRuntime([filing, other], { HUBFLOW_OUTBOX_DIR: outbox });
    app = await createServer(rt);
    runId = (await rt.engine.triggerRun(filing.id, { logicalDate: new Date('2026-01-01T06:00:00Z') })).id;
    await seedFilingRun(rt, runId, outbox);
    // Rejects: five records break not_null on birth_date (each message names its own masked value),
    // two break enum on gender, one from before rules were recorded; 205 more of one rule to page.
    await sql`insert into rejects (run_id, task_id, kind, entity, tenant_id, record_key, field, rule, reason)
      select ${runId}::bigint, 'render', 'filing', 'filing:us-efw2', 'acme', 'w-' || i, 'birth_date', 'not_null', 'not_null: birth_date is empty (' || i || ')' from generate_series(1, 5) i
      union all select ${runId}::bigint, 'render', 'filing', 'filing:us-efw2', 'acme', 'w-' || i, 'gender', 'enum', 'enum: ''X' || i || ''' is not one of F, M' from generate_series(6, 7) i
      union all select ${runId}::bigint, 'render', 'extract', 'workers', 'acme', 'w-9', 'tenant_id', null, 'tenant id is null'
      union all select ${runId}::bigint, 'plan', 'filing', 'filing:ca-t4', 'initech', 'k-' || i, 'sin', 'checksum', 'checksum: SIN ***' || i from generate_series(1, 205) i`.execute(
      rt.db,
    );
  });
  afterAll(async () => {
    await app?.close();
    await rt?.close();
    await rm(outbox, { recursive: true, force: true });
  });

  it('groups rejects by rule, not by message, with sample keys and a link to every record', async () => {
    const page = (await get(`/runs/${runId}`)).body;
    const rows = [...page.matchAll(/<tr data-rule="([^"]+)">.*?<td class="num"><a href="([^"]+)">(\d+)<\/a><\/td><td><code>([^<]*)<\/code>/g)].map((m) => ({
      rule: m[1],
      link: m[2]!.replaceAll('&amp;', '&'),
      records: Number(m[3]),
      keys: m[4],
    }));
    expect(rows.map(({ rule, records, keys }) => [rule, records, keys])).toEqual([
      ['checksum', 205, 'k-1 k-2 k-3'],
      ['not_null', 5, 'w-1 w-2 w-3'],
      ['enum', 2, 'w-6 w-7'],
      ['tenant id is null', 1, 'w-9'],
    ]);
    expect(page).toContain('213 records refused');

    const first = (await get(rows[0]!.link)).body;
    expect([...first.matchAll(/<td><code>(k-\d+)<\/code><\/td>/g)]).toHaveLength(200);
    const next = /<a href="([^"]+)">next 200<\/a>/.exec(first)?.[1]?.replaceAll('&amp;', '&');
    expect(next).toMatch(/after=\d+$/);
    const second = (await get(next!)).body;
    expect([...second.matchAll(/<td><code>(k-\d+)<\/code><\/td>/g)].map((m) => m[1])).toEqual(['k-201', 'k-202', 'k-203', 'k-204', 'k-205']);
    expect(second).not.toContain('next 200');
    expect((await get(`/runs/${runId}/rejects?task=render`)).statusCode).toBe(400);
  });

  it("shows a filing run's outbox: each file, records, sha256, deadline, delivered late or not", async () => {
    const page = (await get(`/runs/${runId}`)).body;
    expect(page).toContain(`<a href="/runs/${runId}/outbox">outbox</a>`);
    expect(page).toMatch(/data-filing="us-efw2\/2025\/acme" data-status="delivered" data-late="false">.*delivered on time/s);
    expect(page).toMatch(/data-filing="gb-rti-fps\/2025-26-M09\/globex" data-status="delivered" data-late="true">.*delivered late/s);
    expect(page).toMatch(/data-filing="ca-t4\/2025\/initech" data-status="not delivered"/);

    const res = await get(`/runs/${runId}/outbox`);
    expect(res.statusCode).toBe(200);
    const block = (key: string) => res.body.split('<section class="filing" ').find((s) => s.startsWith(`data-filing="${key}"`)) ?? '';
    const acme = block('us-efw2/2025/acme');
    expect(acme).toContain('<code>W2REPORT-2025.txt</code> (4096 bytes)');
    expect(acme).toContain(`<code>${SHA('a')}</code>`);
    expect(acme).toContain('<td><code>wages</code></td><td class="num">123456789</td><td class="num">1234567.89</td>');
    expect(acme).toContain('2026-02-02 05:00:00Z');
    expect(block('gb-rti-fps/2025-26-M09/globex')).toContain(`replaced by run ${runId + 1000}`);
    const initech = block('ca-t4/2025/initech');
    expect(initech).toContain('not delivered');
    expect(initech).toMatch(/<code>render<\/code> <span class="state s-failed">failed/);
    expect(res.body).toContain('3 planned, 2 delivered');

    const plain = (await get(`/runs/${(await rt.engine.triggerRun(other.id)).id}`)).body;
    expect(plain).not.toContain('<h2 id="outbox">');
    expect((await get('/runs/99999999/outbox')).statusCode).toBe(404);
  });

  it('lists the runs that missed their SLA, filterable by DAG', async () => {
    const late = await rt.db
      .insertInto('dag_runs')
      .values({
        dag_id: other.id,
        logical_date: '2026-01-05T01:00:00Z',
        interval_start: '2026-01-05T01:00:00Z',
        interval_end: '2026-01-06T01:00:00Z',
        run_type: 'scheduled',
        state: 'running',
        conf: '{}',
        due_at: '2026-01-06T01:00:00Z',
        sla_alerted_at: '2026-01-06T02:00:05Z',
        sla_reason: 'not started by the end of its start window (2026-01-06T02:00:00.000Z)',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await rt.db
      .updateTable('dag_runs')
      .set({ sla_alerted_at: '2026-01-01T18:00:00Z', sla_reason: 'finished at 2026-01-01T19:30:00.000Z, after its deadline', ended_at: '2026-01-01T19:30:00Z' })
      .where('id', '=', runId)
      .execute();
    const all = (await get('/sla')).body;
    expect([...all.matchAll(/<tr data-run="(\d+)">/g)].map((m) => Number(m[1]))).toEqual([late.id, runId]);
    expect(all).toContain('not started by the end of its start window');
    // The deadline is the DAG's: 12 hours after the logical date, overrun by 1 h 30 m.
    expect(all).toMatch(/2026-01-01 18:00:00Z<\/td><td>2026-01-01 19:30:00Z<\/td><td class="num">1 h 30 m<\/td>/);
    const filtered = (await get(`/sla?dag=${other.id}`)).body;
    expect([...filtered.matchAll(/<tr data-run="(\d+)">/g)].map((m) => Number(m[1]))).toEqual([late.id]);
    expect(filtered).toContain(`<option value="${other.id}" selected>`);
    expect((await get('/sla?before=x')).statusCode).toBe(400);
    expect((await get('/')).body).toContain('href="/sla?dag=proofs-filing"');
  });
});
