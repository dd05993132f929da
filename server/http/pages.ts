import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../runtime.ts';
import { openOutbox } from '../../tasks/resources.ts';
import { RUN_STATES, RUN_TYPES, type DagRunRow } from '../store/schema.ts';
import { canAct, runActions, taskActions } from './actions-ui.ts';
import { parseRunId, taskOrder } from './api.ts';
import { BOARD_PATH, boardJobUrl, boardQueueUrl } from './board.ts';
import { errorMessage, formatDuration, formatTime, html, stateBadge, type SafeHtml } from './html.ts';
import { getOutbox, outboxSection } from './outbox-page.ts';
import { sendPage } from './page-reply.ts';
import { getRunDetail, listDags, listRuns, taskSummary, type DagLoadError, type DagSummary, type RunDetail, type TaskSummary } from './queries.ts';
import { rejectRules, rejectRulesSection } from './rejects.ts';
import { liveMarker, runsToken, runToken } from './refresh.ts';
import { parseRunsQuery, runsQueryString, selectOptions, type RunsQuery } from './runs-filter.ts';

export { sendPage } from './page-reply.ts';

const INSTANCES_PER_PAGE = 500;

function dagsTable(dags: DagSummary[]): SafeHtml {
  if (!dags.length) return html`<p class="muted">No DAGs are loaded.</p>`;
  return html`<table>
<tr><th>DAG</th><th>Description</th><th>Owner</th><th>Schedule</th><th>Tasks</th><th>Max active</th><th>Tags</th><th>File</th></tr>
${dags.map(
  (d) => html`<tr>
<td><a href="/dags/${d.id}"><strong>${d.id}</strong></a>${d.is_paused ? html` <span class="paused">paused</span>` : ''}</td>
<td>${d.description}</td><td>${d.owner ?? ''}</td>
<td>${d.schedule ? html`<code>${d.schedule.cron}</code> <span class="muted">${d.schedule.timezone}</span>${d.catchup ? ' (catchup)' : ''}` : html`<span class="muted">manual</span>`}</td>
<td class="num">${d.tasks.length}</td><td class="num">${d.maxActiveRuns}</td><td>${d.tags.join(', ')}</td><td><code>${d.file ?? ''}</code></td>
</tr>`,
)}
</table>`;
}

function errorsTable(errors: DagLoadError[]): SafeHtml {
  if (!errors.length) return html``;
  return html`<h2>DAG files that failed to load</h2>
<table><tr><th>File</th><th>DAG</th><th>Field</th><th>Problem</th></tr>
${errors.map((e) => html`<tr><td><code>${e.file}</code></td><td>${e.dagId ?? ''}</td><td><code>${e.field}</code></td><td class="err">${e.problem}</td></tr>`)}
</table>`;
}

function runsTable(runs: DagRunRow[], filtered: boolean): SafeHtml {
  if (!runs.length) return html`<p class="muted">${filtered ? 'No run matches these filters.' : 'No runs yet.'}</p>`;
  return html`<table class="runs">
<tr><th>Run</th><th>DAG</th><th>Logical date</th><th>Type</th><th>State</th><th>Started</th><th>Ended</th><th>Duration</th></tr>
${runs.map(
  (
    r,
  ) => html`<tr data-run="${r.id}"><td><a href="/runs/${r.id}">${r.id}</a></td><td>${r.dag_id}</td><td>${formatTime(r.logical_date)}</td><td>${r.run_type}</td>
<td>${stateBadge(r.state)}${r.sla_alerted_at ? html` <a class="err" href="/sla?dag=${r.dag_id}" title="${r.sla_reason ?? ''}">SLA</a>` : ''}</td><td>${formatTime(r.started_at)}</td><td>${formatTime(r.ended_at)}</td><td class="num">${formatDuration(r.started_at, r.ended_at)}</td></tr>`,
)}
</table>`;
}

/** The runs list's filters as a plain GET form: it works without script, and its URL can be shared. */
function runsFilterForm(dags: DagSummary[], q: RunsQuery): SafeHtml {
  const ids = dags.map((d) => d.id);
  if (q.dag && !ids.includes(q.dag)) ids.push(q.dag);
  return html`<form class="filters" method="get" action="/#runs">
<label>DAG <select name="dag">${selectOptions(ids, q.dag)}</select></label>
<label>State <select name="state">${selectOptions(RUN_STATES, q.state)}</select></label>
<label>Type <select name="type">${selectOptions(RUN_TYPES, q.type)}</select></label>
<label>Logical date from <input type="date" name="from" value="${q.from ?? ''}"></label>
<label>to <input type="date" name="to" value="${q.to ?? ''}"></label>
${q.limit ? html`<input type="hidden" name="limit" value="${q.limit}">` : ''}
<button type="submit">Filter</button> <a href="/#runs">clear</a>
</form>`;
}

/** Newest and older links that keep the filters; `before` is the last id shown (keyset paging). */
function runsPager(q: RunsQuery, runs: DagRunRow[], more: boolean): SafeHtml {
  const last = runs.at(-1);
  const newest = q.before ? html`<a href="/${runsQueryString(q, { before: '' })}#runs">newest</a>` : '';
  const older = more && last ? html`<a href="/${runsQueryString(q, { before: String(last.id) })}#runs">older runs</a>` : '';
  return newest || older ? html`<p class="pager">${newest}${newest && older ? ' · ' : ''}${older}</p>` : html``;
}

const percent = (rate: number) => `${(rate * 100).toFixed(3)}%`;

function reconciliationSection(recs: RunDetail['reconciliations']): SafeHtml {
  if (!recs.length) return html``;
  const differing = recs.filter((r) => r.fields.length);
  return html`<h2>Reconciliation</h2>
<table>
<tr><th>Tenant</th><th>Entity</th><th>Hub</th><th>Rejected</th><th>Staged</th><th>Current</th><th>Matched</th><th>Mismatched</th><th>Missing in warehouse</th><th>Missing in hub</th><th>Rate</th><th>Severity</th><th>Status</th></tr>
${recs.map(
  (
    r,
  ) => html`<tr><td>${r.tenant_id}</td><td>${r.entity}</td><td class="num">${r.source_count}</td><td class="num">${r.rejected}</td><td class="num">${r.staged_count}</td>
<td class="num">${r.current_count}</td><td class="num">${r.matched}</td><td class="num">${r.mismatched}</td><td class="num">${r.missing_in_target}</td><td class="num">${r.missing_in_source}</td>
<td class="num">${percent(r.mismatch_rate)}</td><td>${r.severity}</td><td>${r.status === 'failed' ? html`<span class="err">failed</span>` : r.status}</td></tr>`,
)}
</table>
${
  differing.length
    ? html`<h3>Differences by field</h3><table><tr><th>Tenant</th><th>Entity</th><th>Field</th><th>Class</th><th>Severity</th><th>Records</th><th>Sample keys</th></tr>
${differing.flatMap((r) => r.fields.map((f) => html`<tr><td>${r.tenant_id}</td><td>${r.entity}</td><td><code>${f.field}</code></td><td>${f.field_class}</td><td>${f.severity}</td><td class="num">${f.mismatched}</td><td><code>${f.sample_keys.join(' ')}</code></td></tr>`))}
</table>`
    : ''
}`;
}

function summaryTable(detail: RunDetail): SafeHtml {
  if (detail.task_instances_total <= detail.task_instances.length) return html``;
  return html`<h2>Tasks</h2>
<table><tr><th>Task</th><th>State</th><th>Instances</th></tr>
${detail.task_summary.map((t) => html`<tr><td><code>${t.task_id}</code></td><td>${stateBadge(t.state)}</td><td class="num">${t.instances}</td></tr>`)}
</table>`;
}

/** Links to the neighbouring pages of a run's task instances, when it has more than one. */
function pager(detail: RunDetail): SafeHtml {
  const { offset, limit, next_offset: next, task_instances_total: total, task_instances: tis } = detail;
  if (offset === 0 && next === null) return html``;
  const id = detail.run.id;
  const from = tis.length ? offset + 1 : offset;
  return html`<p>Instances ${from}–${offset + tis.length} of ${total}
${offset > 0 ? html` · <a href="/runs/${id}?offset=${Math.max(0, offset - limit)}">previous</a>` : ''}
${next !== null ? html` · <a href="/runs/${id}?offset=${next}">next</a>` : ''}</p>`;
}

/** What the run page shows besides the run's detail. */
interface RunExtras {
  rules: Awaited<ReturnType<typeof rejectRules>>;
  outbox: Awaited<ReturnType<typeof getOutbox>>;
  token: string;
}

/** A task instance's anchor: the grid's cells link to it. */
const tiAnchor = (taskId: string, mapIndex: number) => (mapIndex >= 0 ? `ti-${taskId}-${mapIndex}` : `ti-${taskId}`);

function runPage(rt: Runtime, detail: RunDetail, extras: RunExtras, acting: boolean): SafeHtml {
  // In the DAG's order, upstreams first, then by map index: the query pages them that way.
  const { run, task_instances: tis, reconciliations } = detail;
  const conf = JSON.stringify(run.conf ?? {}, null, 2);
  return html`${liveMarker(`/api/live/runs/${run.id}`, extras.token)}<div data-live="run">
<h1>Run ${run.id} of <a href="/dags/${run.dag_id}">${run.dag_id}</a> <span id="run-state">${stateBadge(run.state)}</span></h1>
<dl>
<dt>Logical date</dt><dd>${formatTime(run.logical_date)}</dd>
<dt>Data interval</dt><dd>${formatTime(run.interval_start)} → ${formatTime(run.interval_end)}</dd>
<dt>Type</dt><dd>${run.run_type}</dd>
${run.cancel_reason ? html`<dt>Cancelled</dt><dd>${run.cancel_reason}</dd>` : ''}
<dt>Due</dt><dd>${formatTime(run.due_at)}</dd>
<dt>Started</dt><dd>${formatTime(run.started_at)}</dd>
<dt>Ended</dt><dd>${formatTime(run.ended_at)}</dd>
<dt>Duration</dt><dd>${formatDuration(run.started_at, run.ended_at)}</dd>
${run.sla_alerted_at ? html`<dt>SLA</dt><dd class="err">missed (alerted ${formatTime(run.sla_alerted_at)}): ${run.sla_reason ?? ''}</dd>` : ''}
<dt>Timeline</dt><dd><a href="/runs/${run.id}/gantt">gantt</a>${extras.outbox.length ? html` · <a href="/runs/${run.id}/outbox">outbox</a>` : ''}</dd>
<dt>Queue</dt><dd><a href="${boardQueueUrl(rt)}">task queue in bull-board</a> · <a href="${BOARD_PATH}">all queues</a> · <a href="/api/runs/${run.id}">JSON</a></dd>
<dt>Actions</dt><dd class="muted">through the API, so the store records them: <code>POST /api/runs/${run.id}/clear</code>, <code>POST /api/runs/${run.id}/tasks/&lt;task&gt;/retry</code>, <code>POST /api/runs/${run.id}/cancel</code></dd>
</dl>
${acting ? runActions(run, detail.task_summary) : ''}
${conf !== '{}' ? html`<h2>Conf</h2><pre>${conf}</pre>` : ''}
${summaryTable(detail)}
<h2>Task instances</h2>
${pager(detail)}
<table>
<tr><th>Task</th><th>State</th><th>Tries</th><th>Started</th><th>Ended</th><th>Duration</th><th>Error</th><th>Job</th>${acting ? html`<th>Actions</th>` : ''}</tr>
${tis.map(
  (ti) => html`<tr id="${tiAnchor(ti.task_id, ti.map_index)}" data-task="${ti.task_id}" data-item="${ti.label ?? ''}" data-state="${ti.state}">
<td><code>${ti.task_id}</code>${ti.label === null ? '' : html` ${ti.label} <span class="muted">[${ti.map_index}]</span>`}${ti.try_number > 0 ? html` <a class="log" href="/runs/${run.id}/tasks/${encodeURIComponent(ti.task_id)}/logs${ti.map_index >= 0 ? `?map=${ti.map_index}` : ''}">log</a>` : ''}</td>
<td>${stateBadge(ti.state)}${ti.next_try_at && ti.state === 'up_for_retry' ? html` <span class="muted">next ${formatTime(ti.next_try_at)}</span>` : ''}${ti.state === 'deferred' && ti.deferred_reason ? html` <span class="muted">${ti.deferred_reason}</span>` : ''}</td>
<td class="num">${ti.try_number}/${ti.max_tries}</td>
<td>${formatTime(ti.started_at)}</td><td>${formatTime(ti.ended_at)}</td><td class="num">${formatDuration(ti.started_at, ti.ended_at)}</td>
<td class="${ti.state === 'skipped' ? 'muted' : 'err'}">${ti.state === 'skipped' && ti.error ? `skipped: ${(ti.error as { message?: string }).message ?? ''}` : errorMessage(ti.error)}</td>
<td>${ti.try_number > 0 || ti.state === 'queued' ? html`<a href="${boardJobUrl(rt, ti.job_id)}">${ti.job_id}</a>` : ''}</td>
${acting ? html`<td>${taskActions(run, ti)}</td>` : ''}
</tr>`,
)}
</table>
${pager(detail)}
${outboxSection(run.id, extras.outbox)}
${reconciliationSection(reconciliations)}
${rejectRulesSection(run.id, extras.rules)}
</div>`;
}

/**
 * The offset of the page of a run's instances that holds `task` (its item `index` when mapped):
 * the instances of the tasks before it in the DAG's order, counted from the summary, as the
 * instance query orders them.
 */
function offsetOf(summary: TaskSummary[], order: readonly string[], task: string, index: number): number {
  const rank = (t: string) => (order.includes(t) ? order.indexOf(t) : order.length);
  const target = rank(task);
  const before = summary.filter((s) => rank(s.task_id) < target || (rank(s.task_id) === target && s.task_id < task)).reduce((n, s) => n + s.instances, 0);
  const position = before + Math.max(index, 0);
  return Math.floor(position / INSTANCES_PER_PAGE) * INSTANCES_PER_PAGE;
}

export function registerPages(app: FastifyInstance, rt: Runtime): void {
  app.get<{ Querystring: RunsQuery }>('/', async (request, reply) => {
    const q = request.query;
    const filter = parseRunsQuery(q);
    if (typeof filter === 'string')
      return sendPage(reply, 400, 'Bad filter', html`<h1>Bad filter</h1><p class="err">${filter}</p><p><a href="/">All runs</a></p>`);
    // The token first: a change while the page is read shows on the next poll.
    const token = await runsToken(rt.db, filter);
    const [{ dags, errors }, found] = await Promise.all([listDags(rt), listRuns(rt.db, { ...filter, limit: filter.limit + 1 })]);
    const runs = found.slice(0, filter.limit);
    const filtered = Boolean(filter.dag || filter.state || filter.runType || filter.from || filter.to);
    const body = html`<h1>DAGs</h1>
${dagsTable(dags)}
${errorsTable(errors)}
<h2 id="runs">${filtered ? 'Runs' : 'Latest runs'}${filter.before ? ` before ${filter.before}` : ''}</h2>
${runsFilterForm(dags, q)}
${liveMarker(`/api/live/runs${runsQueryString(q)}`, token)}
<div data-live="runs">
${runsTable(runs, filtered)}
${runsPager(q, runs, found.length > filter.limit)}
</div>`;
    return sendPage(reply, 200, 'DAGs and runs', body);
  });

  // The grid's cells: to the run page's page and row of the instance.
  app.get<{ Params: { id: string; task: string; index?: string } }>('/runs/:id/t/:task/:index?', async (request, reply) => {
    const { id, task, index } = request.params;
    const mapped = index !== undefined && /^\d{1,9}$/.test(index);
    const q = new URLSearchParams({ task, ...(mapped ? { index } : {}) });
    return reply.redirect(`/runs/${encodeURIComponent(id)}?${q}#${encodeURIComponent(tiAnchor(task, mapped ? Number(index) : -1))}`, 302);
  });

  app.get<{ Params: { id: string }; Querystring: { offset?: string; task?: string; index?: string } }>('/runs/:id', async (request, reply) => {
    const id = parseRunId(request.params.id);
    if (id === undefined) return sendPage(reply, 400, 'Bad run id', html`<h1>Bad run id</h1><p>${request.params.id} is not a run id.</p>`);
    const { task, index } = request.query;
    let offset = Number(request.query.offset ?? 0);
    if (!Number.isSafeInteger(offset) || offset < 0)
      return sendPage(reply, 400, 'Bad offset', html`<h1>Bad offset</h1><p>${request.query.offset ?? ''} is not an offset.</p>`);
    const order = taskOrder(rt);
    const token = await runToken(rt.db, id);
    if (task && request.query.offset === undefined) {
      const dagId = (await rt.db.selectFrom('dag_runs').select('dag_id').where('id', '=', id).executeTakeFirst())?.dag_id;
      if (dagId) offset = offsetOf(await taskSummary(rt.db, id), order(dagId), task, Number(index ?? -1) || 0);
    }
    const page = { offset, limit: INSTANCES_PER_PAGE, taskOrder: order };
    const detail = await getRunDetail(rt.db, id, (ref) => rt.engine.dispatcher.jobId(ref), page);
    if (!detail || token === undefined) return sendPage(reply, 404, 'No such run', html`<h1>No run ${id}</h1><p><a href="/">All runs</a></p>`);
    const [rules, outbox] = await Promise.all([rejectRules(rt.db, id), getOutbox(rt.db, openOutbox(rt.config).dir, detail.run, order(detail.run.dag_id))]);
    return sendPage(reply, 200, `Run ${id} of ${detail.run.dag_id}`, runPage(rt, detail, { rules, outbox, token }, canAct(request)));
  });
}
