import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Runtime } from '../runtime.ts';
import type { Store } from '../store/db.ts';
import { parseRunId } from './api.ts';
import { sendError } from './errors.ts';
import { html, SafeHtml } from './html.ts';
import { listRuns, type RunFilter } from './queries.ts';
import { parseRunsQuery, type RunsQuery } from './runs-filter.ts';

/** How often an open page asks whether it changed. */
export const LIVE_EVERY_MS = 5_000;

/**
 * Live refresh without a build step: every few seconds, while the tab is visible, the page asks
 * its small JSON endpoint for a token of what it shows; only when the token changed does it
 * fetch itself again and swap its `data-live` regions in place (forms and scroll stay). The
 * server pays one aggregate query per poll and renders only on a change. Without script the
 * page is complete as served. The text is fixed, so the CSP allows it by hash.
 */
const LIVE_SCRIPT = `(() => {
  const m = document.querySelector('[data-live-url]');
  if (!m) return;
  let token = m.getAttribute('data-live-token');
  let busy = false;
  async function tick() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const r = await fetch(m.getAttribute('data-live-url'), { headers: { accept: 'application/json' }, cache: 'no-store' });
      if (!r.ok) return;
      const now = (await r.json()).token;
      if (now === token) return;
      const p = await fetch(location.href, { headers: { accept: 'text/html' }, cache: 'no-store' });
      if (!p.ok) return;
      const doc = new DOMParser().parseFromString(await p.text(), 'text/html');
      for (const el of document.querySelectorAll('[data-live]')) {
        const fresh = doc.querySelector('[data-live="' + el.getAttribute('data-live') + '"]');
        if (fresh) el.replaceWith(document.adoptNode(fresh));
      }
      const next = doc.querySelector('[data-live-url]');
      token = next ? next.getAttribute('data-live-token') : now;
      m.setAttribute('data-live-token', token);
      m.setAttribute('data-live-at', new Date().toISOString());
    } catch {
      // The server is away or restarting: the page stays as it is and the next tick tries again.
    } finally {
      busy = false;
    }
  }
  setInterval(tick, Number(m.getAttribute('data-live-every')) || 5000);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) tick(); });
})();`;

/** The script's CSP source expression. */
export const LIVE_SCRIPT_SOURCE = `'sha256-${createHash('sha256').update(LIVE_SCRIPT).digest('base64')}'`;

/** The marker the script reads (where to poll, the token the page was rendered at) and the script itself. */
export function liveMarker(url: string, token: string): SafeHtml {
  return html`<p class="live muted" data-live-url="${url}" data-live-token="${token}" data-live-every="${LIVE_EVERY_MS}">Updates while this tab is open.</p>
<script>${new SafeHtml(LIVE_SCRIPT)}</script>`;
}

const digest = (parts: readonly unknown[]) => createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 22);

// An order-free sum of one hash per instance: one row back, however many instances.
const instancesHash = sql<string>`count(*) || ':' || coalesce(sum(hashtext(t.id || ':' || t.state || ':' || t.try_number)), 0)`;

/** What the runs list shows of its runs: which runs, and their states. */
export async function runsToken(db: Store, filter: RunFilter): Promise<string> {
  const runs = await listRuns(db, filter);
  return digest(runs.map((r) => [r.id, r.state, r.sla_alerted_at]));
}

/** What a run page shows: the run's state and times, and each instance's state and try. */
export async function runToken(db: Store, runId: number): Promise<string | undefined> {
  const row = await db
    .selectFrom('dag_runs as r')
    .select(['r.state', 'r.started_at', 'r.ended_at', 'r.sla_alerted_at'])
    .select((eb) => eb.selectFrom('task_instances as t').select(instancesHash.as('h')).whereRef('t.run_id', '=', 'r.id').as('instances'))
    .where('r.id', '=', runId)
    .executeTakeFirst();
  return row && digest(Object.values(row));
}

/** What a DAG's grid and graph show: its latest `runs` runs and their instances, and its pause state. */
export async function gridToken(db: Store, dagId: string, runs: number): Promise<string> {
  const { rows } = await sql<{ runs: string | null; instances: string; paused: boolean | null }>`
    with r as (select id, state from dag_runs where dag_id = ${dagId} order by id desc limit ${runs})
    select (select string_agg(id || state, ',' order by id) from r) as runs,
           (select ${instancesHash} from task_instances t where t.run_id in (select id from r)) as instances,
           (select is_paused from dags where dag_id = ${dagId}) as paused`.execute(db);
  return digest(Object.values(rows[0] ?? {}));
}

/** `/api/live/...`: the token of each live page, for its script. */
export function registerLive(app: FastifyInstance, rt: Runtime): void {
  app.get<{ Querystring: RunsQuery }>('/api/live/runs', async (request, reply) => {
    const filter = parseRunsQuery(request.query);
    if (typeof filter === 'string') return sendError(reply, 400, filter);
    return { token: await runsToken(rt.db, filter) };
  });
  app.get<{ Params: { id: string } }>('/api/live/runs/:id', async (request, reply) => {
    const id = parseRunId(request.params.id);
    if (id === undefined) return sendError(reply, 400, `run id must be a positive integer, not '${request.params.id}'`);
    const token = await runToken(rt.db, id);
    return token === undefined ? sendError(reply, 404, `no run ${id}`) : { token };
  });
  app.get<{ Params: { id: string }; Querystring: { runs?: string } }>('/api/live/dags/:id', async (request, reply) => {
    if (!rt.dags.dags.has(request.params.id)) return sendError(reply, 404, `no DAG ${request.params.id} is loaded`);
    const runs = Number(request.query.runs);
    if (!Number.isInteger(runs) || runs < 1 || runs > 1_000) return sendError(reply, 400, 'runs must be a whole number from 1 to 1000');
    return { token: await gridToken(rt.db, request.params.id, runs) };
  });
}
