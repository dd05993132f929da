import type { FastifyInstance } from 'fastify';
import { deferralFor, resourcesOf, taskOf } from '../engine/windows.ts';
import type { Runtime } from '../runtime.ts';
import { parseRunId, taskOrder } from './api.ts';
import { GANTT_MAX_INSTANCES, getGanttData, type GanttData, type GanttInstance } from './gantt-queries.ts';
import { stateClass } from './grid.ts';
import { formatDuration, formatTime, html, SafeHtml, stateBadge } from './html.ts';
import { sendPage } from './pages.ts';

const TICKS = 5;
// A try's state is its attempt's outcome; 'retry' and 'lost' take the colours of the instance states they lead to.
const OUTCOME_CLASS: Record<string, string> = { retry: 'up_for_retry', lost: 'failed' };
const WAITING = new Set(['queued', 'deferred', 'up_for_retry']);

const STYLE = new SafeHtml(`<style>
.gantt{font-size:12px}.gantt .grow{display:grid;grid-template-columns:16rem 1fr;align-items:center;border-bottom:1px solid #f1f3f6}
.gantt .glabel{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding:1px .4rem}.gantt .track{position:relative;height:18px}
.gantt .bar{position:absolute;top:3px;height:12px;min-width:2px;border-radius:2px}
.gantt .bar.queued{background:#d1d5db}.gantt .bar.deferred{background:repeating-linear-gradient(45deg,#c4b5fd 0 4px,#ede9fe 4px 8px)}
.gantt .bar.run{background:#60a5fa}.gantt .bar.s-success{background:#34d399}.gantt .bar.s-failed{background:#f87171}
.gantt .bar.s-up_for_retry{background:#fbbf24}.gantt .bar.s-skipped{background:#f9a8d4}.gantt .bar.s-cancelled{background:#a78bfa}
.gantt .axis{position:relative;height:1.4rem;color:#6b7685}.gantt .axis>span{position:absolute;transform:translateX(-50%);white-space:nowrap}
.gantt .axis>span:first-child{transform:none}.gantt .axis>span:last-child{transform:translateX(-100%)}
.legend span.key{display:inline-block;width:1.4rem;height:.7rem;margin:0 .3rem 0 .8rem;vertical-align:middle}
</style>`);

/** A span of one try: waiting in the queue, held back by a blackout, or running. */
interface Bar {
  kind: 'queued' | 'deferred' | 'run';
  from: Date;
  to: Date;
  state: string;
  note: string;
}

/** One try of one instance, as a row. */
interface Row {
  task_id: string;
  label: string | null;
  try: number;
  state: string;
  bars: Bar[];
}

/**
 * The queue span of a try, split where a blackout held it: the store keeps the reason only while
 * an instance is deferred, so for a try that has started the blackout is found again from its
 * resources' windows at the time it was queued (without the jitter, which is not kept).
 */
function queueBars(rt: Runtime, dagId: string, ti: GanttInstance, span: { from: Date; to: Date; try: number; pending: boolean }, state: string): Bar[] {
  const { from, to } = span;
  // A retry's wait starts when the try before it ended, so it holds the backoff too.
  const note = span.try > 1 ? 'waiting to retry, then queued' : 'queued';
  const found = taskOf(rt.dags, dagId, ti.task_id);
  const deferral =
    span.pending && ti.state === 'deferred' && ti.deferred_until
      ? { until: ti.deferred_until, reason: ti.deferred_reason ?? 'deferred' }
      : found?.task.uses.length
        ? deferralFor(resourcesOf(rt.dags, found.task), from, () => 0)
        : null;
  if (!deferral || deferral.until <= from) return [{ kind: 'queued', from, to, state, note }];
  // A wait still under way is drawn to the end of the blackout; one that ended, to the try's start.
  const held = new Date(Math.min(deferral.until.getTime(), to.getTime()));
  const deferred: Bar = { kind: 'deferred', from, to: span.pending ? deferral.until : held, state, note: `deferred: ${deferral.reason}` };
  return held < to ? [deferred, { kind: 'queued', from: held, to, state, note }] : [deferred];
}

function rowsOf(rt: Runtime, data: GanttData, now: Date): Row[] {
  return data.instances.flatMap((ti) => {
    const rows: Row[] = [];
    let queuedAt = ti.ready_at;
    for (const a of ti.attempts) {
      const state = a.outcome;
      const span = { from: queuedAt ?? a.started_at, to: a.started_at, try: a.try_number, pending: false };
      const bars = span.from < span.to ? queueBars(rt, data.run.dag_id, ti, span, state) : [];
      bars.push({ kind: 'run', from: a.started_at, to: a.ended_at ?? now, state, note: a.outcome });
      rows.push({ task_id: ti.task_id, label: ti.label, try: a.try_number, state, bars });
      queuedAt = a.ended_at;
    }
    if (WAITING.has(ti.state) || !ti.attempts.length) {
      const from = queuedAt ?? ti.ready_at;
      const bars = from && WAITING.has(ti.state) ? queueBars(rt, data.run.dag_id, ti, { from, to: now, try: ti.try_number + 1, pending: true }, ti.state) : [];
      rows.push({ task_id: ti.task_id, label: ti.label, try: ti.try_number + 1, state: ti.state, bars });
    }
    return rows;
  });
}

const barClass = (bar: Bar) => (bar.kind === 'run' ? `bar run ${stateClass(OUTCOME_CLASS[bar.state] ?? bar.state)}` : `bar ${bar.kind}`);

function axis(from: number, span: number): SafeHtml {
  const ticks = Array.from({ length: TICKS }, (_, i) => from + (span * i) / (TICKS - 1));
  return html`<div class="grow"><span></span><div class="axis">${ticks.map(
    (t, i) =>
      html`<span style="left:${((100 * i) / (TICKS - 1)).toFixed(2)}%">${formatTime(new Date(t)).slice(11)} <span class="muted">+${formatDuration(new Date(from), new Date(t)) || '0 ms'}</span></span>`,
  )}</div></div>`;
}

/** Bars positioned in percent of the run's time span, so the chart needs no script and no fixed width. */
export function ganttChart(rows: Row[]): SafeHtml {
  const times = rows.flatMap((r) => r.bars.flatMap((b) => [b.from.getTime(), b.to.getTime()]));
  if (!times.length) return html`<p class="muted">No task has been queued yet.</p>`;
  const from = Math.min(...times);
  const span = Math.max(Math.max(...times) - from, 1);
  const pct = (t: Date) => ((100 * (t.getTime() - from)) / span).toFixed(3);
  const width = (b: Bar) => ((100 * (b.to.getTime() - b.from.getTime())) / span).toFixed(3);
  return html`<div class="gantt">
${axis(from, span)}
${rows.map(
  (r) => html`<div class="grow" data-task="${r.task_id}" data-item="${r.label ?? ''}" data-try="${r.try}" data-state="${r.state}">
<span class="glabel" title="${r.task_id}${r.label === null ? '' : ` ${r.label}`} try ${r.try}: ${r.state}"><code>${r.task_id}</code>${r.label === null ? '' : html` ${r.label}`} <span class="muted">#${r.try}</span> ${stateBadge(r.state)}</span>
<div class="track">${r.bars.map(
    (b) =>
      html`<span class="${barClass(b)}" data-kind="${b.kind}" style="left:${pct(b.from)}%;width:${width(b)}%" title="${b.note}: ${formatTime(b.from)} → ${formatTime(b.to)} (${formatDuration(b.from, b.to)})"></span>`,
  )}</div></div>`,
)}
</div>`;
}

function ganttPage(rt: Runtime, data: GanttData): SafeHtml {
  const { run } = data;
  const more = data.total > data.instances.length ? html`<p class="muted">The first ${GANTT_MAX_INSTANCES} of ${data.total} instances.</p>` : '';
  return html`${STYLE}<h1>Gantt of <a href="/runs/${run.id}">run ${run.id}</a> of <a href="/dags/${run.dag_id}">${run.dag_id}</a> ${stateBadge(run.state)}</h1>
<p class="legend muted">One row per try, times in UTC:<span class="key" style="background:#d1d5db"></span>queued
<span class="key" style="background:repeating-linear-gradient(45deg,#c4b5fd 0 4px,#ede9fe 4px 8px)"></span>deferred by a blackout
<span class="key" style="background:#34d399"></span>running, coloured by how the try ended</p>
${more}
${ganttChart(rowsOf(rt, data, new Date()))}`;
}

export function registerGantt(app: FastifyInstance, rt: Runtime): void {
  app.get<{ Params: { id: string } }>('/runs/:id/gantt', async (request, reply) => {
    const id = parseRunId(request.params.id);
    if (id === undefined) return sendPage(reply, 400, 'Bad run id', html`<h1>Bad run id</h1><p>${request.params.id} is not a run id.</p>`);
    const data = await getGanttData(rt.db, id, taskOrder(rt));
    if (!data) return sendPage(reply, 404, 'No such run', html`<h1>No run ${id}</h1><p><a href="/">All runs</a></p>`);
    return sendPage(reply, 200, `Gantt of run ${id}`, ganttPage(rt, data));
  });
}
