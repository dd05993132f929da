import type { FastifyInstance } from 'fastify';
import { deadlineFor, windowFor } from '../engine/sla.ts';
import type { Runtime } from '../runtime.ts';
import type { Store } from '../store/db.ts';
import type { DagRunRow } from '../store/schema.ts';
import { formatDuration, formatTime, html, type SafeHtml, stateBadge } from './html.ts';
import { sendPage } from './page-reply.ts';
import { selectOptions } from './runs-filter.ts';

const PER_PAGE = 100;

export interface SlaFilter {
  dag?: string;
  /** Only misses of runs older than this one (keyset paging, newest first). */
  before?: number;
  limit: number;
}

/** Runs that raised an SLA alert (start window or deadline), newest first. */
export function listSlaMisses(db: Store, f: SlaFilter): Promise<DagRunRow[]> {
  let query = db.selectFrom('dag_runs').selectAll().where('sla_alerted_at', 'is not', null);
  if (f.dag) query = query.where('dag_id', '=', f.dag);
  if (f.before) query = query.where('id', '<', f.before);
  return query.orderBy('id', 'desc').limit(f.limit).execute();
}

/** The run's deadline and window close as its DAG defines them now (empty when the DAG is no longer loaded). */
function expected(rt: Runtime, run: DagRunRow): { deadline: Date | undefined; windowEnd: Date | undefined } {
  const dag = rt.dags.dags.get(run.dag_id);
  if (!dag) return { deadline: undefined, windowEnd: undefined };
  return { deadline: deadlineFor(dag, new Date(run.logical_date)), windowEnd: windowFor(dag, new Date(run.due_at))?.end };
}

function filterForm(rt: Runtime, dag: string | undefined): SafeHtml {
  const ids = [...rt.dags.dags.values()].filter((d) => d.deadline || d.window).map((d) => d.id);
  if (dag && !ids.includes(dag)) ids.push(dag);
  return html`<form class="filters" method="get" action="/sla">
<label>DAG <select name="dag">${selectOptions(ids.sort(), dag)}</select></label>
<button type="submit">Filter</button>${dag ? html` <a href="/sla">clear</a>` : ''}
</form>`;
}

function missesTable(rt: Runtime, runs: DagRunRow[]): SafeHtml {
  if (!runs.length) return html`<p class="muted">No run has missed its SLA.</p>`;
  return html`<table class="sla">
<tr><th>Run</th><th>DAG</th><th>Logical date</th><th>State</th><th>Window closed</th><th>Deadline</th><th>Ended</th><th>Over by</th><th>Alerted</th><th>Why</th></tr>
${runs.map((r) => {
  const { deadline, windowEnd } = expected(rt, r);
  const over = deadline && r.ended_at && new Date(r.ended_at) > deadline ? formatDuration(deadline, r.ended_at) : '';
  return html`<tr data-run="${r.id}"><td><a href="/runs/${r.id}">${r.id}</a></td><td><a href="/dags/${r.dag_id}">${r.dag_id}</a></td><td>${formatTime(r.logical_date)}</td>
<td>${stateBadge(r.state)}</td><td>${formatTime(windowEnd)}</td><td>${formatTime(deadline)}</td><td>${formatTime(r.ended_at)}</td><td class="num">${over}</td>
<td>${formatTime(r.sla_alerted_at)}</td><td class="err">${r.sla_reason ?? ''}</td></tr>`;
})}
</table>`;
}

export function registerSlaPage(app: FastifyInstance, rt: Runtime): void {
  app.get<{ Querystring: { dag?: string; before?: string } }>('/sla', async (request, reply) => {
    const dag = request.query.dag?.trim() || undefined;
    const rawBefore = request.query.before?.trim() || undefined;
    const before = rawBefore === undefined ? undefined : Number(rawBefore);
    if (before !== undefined && !(Number.isSafeInteger(before) && before > 0))
      return sendPage(reply, 400, 'Bad request', html`<h1>Bad request</h1><p>before: '${rawBefore}' is not a run id.</p>`);
    const runs = await listSlaMisses(rt.db, { dag, before, limit: PER_PAGE + 1 });
    const shown = runs.slice(0, PER_PAGE);
    const q = (b: number) => `/sla?${new URLSearchParams({ ...(dag ? { dag } : {}), before: String(b) })}`;
    const body = html`<h1>SLA misses</h1>
<p class="muted">Scheduled runs that started after their start window closed or finished (or were projected to finish) after their deadline, as the scheduler alerted them; see the README's "Batch windows". Deadlines and windows are the DAG's as loaded now.</p>
${filterForm(rt, dag)}
${missesTable(rt, shown)}
<p>${before ? html`<a href="/sla${dag ? `?${new URLSearchParams({ dag })}` : ''}">newest</a>` : ''}${runs.length > PER_PAGE ? html` · <a href="${q(shown.at(-1)!.id)}">older</a>` : ''}</p>`;
    return sendPage(reply, 200, 'SLA misses', body);
  });
}
