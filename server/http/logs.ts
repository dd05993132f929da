import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { readTaskLog, type TaskLog } from '../engine/task-log-store.ts';
import type { Runtime } from '../runtime.ts';
import { parseRunId } from './api.ts';
import { itemLabel } from './dag-queries.ts';
import { sendError, zodIssues } from './errors.ts';
import { formatDuration, formatTime, html, SafeHtml, stateBadge } from './html.ts';
import { sendPage } from './pages.ts';

/** Instances of a mapped task offered as links; past this many, the reader names one with ?map=. */
const MAP_LINKS = 300;

const logQuery = z
  .object({
    try: z.coerce.number().int().min(1).optional(),
    map: z.coerce.number().int().min(0).optional(),
  })
  .strict();

/** The URL of a try's log page (the latest try, or the first instance of a mapped task, when not given). */
export function logPageUrl(runId: number, taskId: string, options: { try?: number; map?: number } = {}): string {
  const query = new URLSearchParams();
  if (options.map !== undefined && options.map >= 0) query.set('map', String(options.map));
  if (options.try !== undefined) query.set('try', String(options.try));
  const q = query.toString();
  return `/runs/${runId}/tasks/${encodeURIComponent(taskId)}/logs${q ? `?${q}` : ''}`;
}

const STYLE = new SafeHtml(`<style>
.picker{margin:.4rem 0;line-height:1.9}.picker a,.picker strong{margin-right:.9rem;white-space:nowrap}
pre.log{white-space:pre-wrap;word-break:break-word;line-height:1.4;max-width:100%}
pre.log .ln{display:block}pre.log .at{color:#6b7685}pre.log .lv{display:inline-block;min-width:3.6rem;font-weight:600}
.lv-error,.lv-fatal{color:#b91c1c}.lv-warn{color:#b45309}.lv-debug,.lv-trace{color:#6b7685}.lv-stderr{color:#9d174d}.lv-stdout{color:#374151}
</style>`);

/** The try selector: one link per try, the shown one in bold. */
function triesPicker(log: TaskLog, runId: number): SafeHtml {
  if (!log.tries.length) return html`<p class="muted">Not started yet: no try to show.</p>`;
  const map = log.instance.map_index;
  return html`<p class="picker tries">Tries: ${log.tries.map((t) => {
    const label = html`try ${t.try_number} ${stateBadge(t.outcome)} <span class="muted">${t.lines} lines</span>`;
    return t.try_number === log.try
      ? html`<strong data-try="${t.try_number}">${label}</strong>`
      : html`<a data-try="${t.try_number}" href="${logPageUrl(runId, log.instance.task_id, { try: t.try_number, map })}">${label}</a>`;
  })}</p>`;
}

/** The instance selector of a mapped task, each by its item (the tenant), not only its index. */
function mapPicker(log: TaskLog, runId: number): SafeHtml {
  if (!log.mapped.length) return html``;
  const shown = log.mapped.slice(0, MAP_LINKS);
  const more = log.mapped.length - shown.length;
  return html`<p class="picker instances">Instances: ${shown.map((i) => {
    const label = html`[${i.map_index}] ${itemLabel(i.map_item, i.map_index)} ${stateBadge(i.state)}`;
    return i.map_index === log.instance.map_index
      ? html`<strong data-map="${i.map_index}">${label}</strong>`
      : html`<a data-map="${i.map_index}" href="${logPageUrl(runId, log.instance.task_id, { map: i.map_index })}">${label}</a>`;
  })}${more > 0 ? html`<span class="muted">and ${more} more: add ?map=N to the address</span>` : ''}</p>`;
}

function linesBlock(log: TaskLog): SafeHtml {
  if (log.try === null) return html``;
  if (!log.lines.length) return html`<p class="muted">This try logged and printed nothing (or its log is past HUBFLOW_LOG_RETENTION).</p>`;
  return html`<pre class="log">${log.lines.map(
    (l) =>
      html`<span class="ln" data-level="${l.level}"><span class="at">${formatTime(l.at).slice(11, 19)}</span> <span class="lv lv-${/^[a-z]+$/.test(l.level) ? l.level : 'other'}">${l.level}</span> ${l.line}</span>`,
  )}</pre>`;
}

function logPage(log: TaskLog): SafeHtml {
  const { run, instance } = log;
  const shown = log.tries.find((t) => t.try_number === log.try);
  const item = instance.map_index >= 0 ? html` <span class="item">${itemLabel(instance.map_item, instance.map_index)}</span>` : '';
  return html`${STYLE}<h1>Log of <code>${instance.task_id}</code>${item}${log.try === null ? '' : ` try ${log.try}`} ${stateBadge(shown?.outcome ?? instance.state)}</h1>
<p><a href="/runs/${run.id}">run ${run.id}</a> of <a href="/dags/${run.dag_id}">${run.dag_id}</a> ${stateBadge(run.state)} · <a href="/runs/${run.id}/gantt">gantt</a> ·
<a href="/api${logPageUrl(run.id, instance.task_id, { try: log.try ?? undefined, map: instance.map_index })}">JSON</a>
${shown ? html` · started ${formatTime(shown.started_at)}${shown.ended_at ? html`, took ${formatDuration(shown.started_at, shown.ended_at)}` : html`, <span class="running">still running: reload for the lines written since</span>`}` : ''}</p>
${mapPicker(log, run.id)}
${triesPicker(log, run.id)}
${linesBlock(log)}`;
}

/** The JSON answer: the try shown, every try's outcome, and its lines. */
function logJson(log: TaskLog) {
  const { run, instance } = log;
  return {
    run: run.id,
    dag: run.dag_id,
    task: instance.task_id,
    map_index: instance.map_index,
    item: instance.map_index >= 0 ? itemLabel(instance.map_item, instance.map_index) : null,
    state: instance.state,
    try: log.try,
    tries: log.tries,
    lines: log.lines,
  };
}

function notFound(err: unknown): string | undefined {
  return err instanceof Error && err.name === 'NotFoundError' ? err.message : undefined;
}

export function registerLogs(app: FastifyInstance, rt: Runtime): void {
  app.get<{ Params: { id: string; task: string } }>('/api/runs/:id/tasks/:task/logs', async (request, reply) => {
    const id = parseRunId(request.params.id);
    if (id === undefined) return sendError(reply, 400, `run id must be a positive integer, not '${request.params.id}'`);
    const query = logQuery.safeParse(request.query);
    if (!query.success) return sendError(reply, 400, 'invalid query', zodIssues(query.error));
    return logJson(await readTaskLog(rt.db, id, request.params.task, query.data));
  });

  app.get<{ Params: { id: string; task: string } }>('/runs/:id/tasks/:task/logs', async (request, reply): Promise<FastifyReply> => {
    const id = parseRunId(request.params.id);
    if (id === undefined) return sendPage(reply, 400, 'Bad run id', html`<h1>Bad run id</h1><p>${request.params.id} is not a run id.</p>`);
    const query = logQuery.safeParse(request.query);
    if (!query.success) {
      const problems = zodIssues(query.error).map((i) => `${i.path}: ${i.message}`);
      return sendPage(reply, 400, 'Bad query', html`<h1>Bad query</h1><p>${problems.join('; ')}</p><p><a href="/runs/${id}">run ${id}</a></p>`);
    }
    try {
      const log = await readTaskLog(rt.db, id, request.params.task, { ...query.data, firstInstance: true });
      const title = `Log of ${log.instance.task_id}${log.try === null ? '' : ` try ${log.try}`} of run ${id}`;
      return sendPage(reply, 200, title, logPage(log));
    } catch (err) {
      const missing = notFound(err);
      if (missing === undefined) throw err;
      return sendPage(
        reply,
        404,
        'No such log',
        html`<h1>No such log</h1><p>${missing}.</p><p><a href="/runs/${id}">run ${id}</a> · <a href="/">all runs</a></p>`,
      );
    }
  });
}
