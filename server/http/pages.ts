import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Runtime } from '../runtime.ts';
import type { DagRunRow } from '../store/schema.ts';
import { ACTIONS_CSP, canAct, runActions, taskActions } from './actions-ui.ts';
import { parseRunId, taskOrder } from './api.ts';
import { BOARD_PATH, boardJobUrl, boardQueueUrl } from './board.ts';
import { errorMessage, formatDuration, formatTime, html, page, stateBadge, type SafeHtml } from './html.ts';
import { getRunDetail, listDags, listRuns, type DagLoadError, type DagSummary, type RunDetail } from './queries.ts';

const LATEST_RUNS = 50;
const INSTANCES_PER_PAGE = 500;

// No script but the action buttons' own (allowed by its hash) may run on these pages, whatever a DAG id or an error message contains.
const CSP = `default-src 'none'; ${ACTIONS_CSP}; style-src 'unsafe-inline'; img-src 'self'; form-action 'none'; frame-ancestors 'none'`;

export function sendPage(reply: FastifyReply, status: number, title: string, body: SafeHtml): FastifyReply {
  return reply
    .code(status)
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .type('text/html; charset=utf-8')
    .send(page(title, body));
}

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

function runsTable(runs: DagRunRow[]): SafeHtml {
  if (!runs.length) return html`<p class="muted">No runs yet.</p>`;
  return html`<table>
<tr><th>Run</th><th>DAG</th><th>Logical date</th><th>Type</th><th>State</th><th>Started</th><th>Ended</th><th>Duration</th></tr>
${runs.map(
  (r) => html`<tr><td><a href="/runs/${r.id}">${r.id}</a></td><td>${r.dag_id}</td><td>${formatTime(r.logical_date)}</td><td>${r.run_type}</td>
<td>${stateBadge(r.state)}</td><td>${formatTime(r.started_at)}</td><td>${formatTime(r.ended_at)}</td><td class="num">${formatDuration(r.started_at, r.ended_at)}</td></tr>`,
)}
</table>`;
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

function rejectsSection(rejects: RunDetail['rejects']): SafeHtml {
  if (!rejects.length) return html``;
  return html`<h2>Rejected records</h2>
<p class="muted">Kept in the store's <code>rejects</code> table with the raw record; counted here by reason.</p>
<table><tr><th>Task</th><th>Entity</th><th>Field</th><th>Rule</th><th>Reason</th><th>Records</th></tr>
${rejects.map((r) => html`<tr><td><code>${r.task_id}</code></td><td>${r.entity}</td><td><code>${r.field}</code></td><td><code>${r.rule ?? ''}</code></td><td class="err">${r.reason}</td><td class="num">${r.records}</td></tr>`)}
</table>`;
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

function runPage(rt: Runtime, detail: RunDetail, acting: boolean): SafeHtml {
  // In the DAG's order, upstreams first, then by map index: the query pages them that way.
  const { run, task_instances: tis, reconciliations, rejects } = detail;
  const conf = JSON.stringify(run.conf ?? {}, null, 2);
  return html`<h1>Run ${run.id} of <a href="/dags/${run.dag_id}">${run.dag_id}</a> ${stateBadge(run.state)}</h1>
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
<dt>Timeline</dt><dd><a href="/runs/${run.id}/gantt">gantt</a></dd>
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
  (ti) => html`<tr>
<td><code>${ti.task_id}${ti.map_index >= 0 ? `[${ti.map_index}]` : ''}</code></td>
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
${reconciliationSection(reconciliations)}
${rejectsSection(rejects)}`;
}

export function registerPages(app: FastifyInstance, rt: Runtime): void {
  app.get<{ Querystring: { before?: string } }>('/', async (request, reply) => {
    const before = parseRunId(request.query.before ?? '');
    const [{ dags, errors }, runs] = await Promise.all([listDags(rt), listRuns(rt.db, { limit: LATEST_RUNS, before })]);
    const older = runs.length === LATEST_RUNS ? html`<p><a href="/?before=${runs[runs.length - 1]!.id}">older runs</a></p>` : '';
    const body = html`<h1>DAGs</h1>
${dagsTable(dags)}
${errorsTable(errors)}
<h2>${before ? `Runs before ${before}` : 'Latest runs'}</h2>
${runsTable(runs)}
${older}`;
    return sendPage(reply, 200, 'DAGs and runs', body);
  });

  app.get<{ Params: { id: string }; Querystring: { offset?: string } }>('/runs/:id', async (request, reply) => {
    const id = parseRunId(request.params.id);
    if (id === undefined) return sendPage(reply, 400, 'Bad run id', html`<h1>Bad run id</h1><p>${request.params.id} is not a run id.</p>`);
    const offset = Number(request.query.offset ?? 0);
    if (!Number.isSafeInteger(offset) || offset < 0)
      return sendPage(reply, 400, 'Bad offset', html`<h1>Bad offset</h1><p>${request.query.offset ?? ''} is not an offset.</p>`);
    const page = { offset, limit: INSTANCES_PER_PAGE, taskOrder: taskOrder(rt) };
    const detail = await getRunDetail(rt.db, id, (ref) => rt.engine.dispatcher.jobId(ref), page);
    if (!detail) return sendPage(reply, 404, 'No such run', html`<h1>No run ${id}</h1><p><a href="/">All runs</a></p>`);
    return sendPage(reply, 200, `Run ${id} of ${detail.run.dag_id}`, runPage(rt, detail, canAct(request)));
  });
}
