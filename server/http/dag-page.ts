import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Dag } from '../engine/dag.ts';
import type { Runtime } from '../runtime.ts';
import { canAct, dagActions } from './actions-ui.ts';
import { getGridData, isPaused, type GridData } from './dag-queries.ts';
import { dagGraph } from './graph.ts';
import { gridTable, indexInstances, summarise, type CellSummary } from './grid.ts';
import { formatTime, html, SafeHtml } from './html.ts';
import { gridToken, liveMarker } from './refresh.ts';
import { sendPage } from './pages.ts';

const DEFAULT_RUNS = 25;
const MAX_RUNS = 1_000;
const NEXT_TICKS = 5;
const SOURCE_MAX = 256 * 1024;

// The grid's cells and the graph's boxes take the state colours of the badges.
const STYLE = new SafeHtml(`<style>
.gridwrap{overflow-x:auto}table.grid{width:auto;border-collapse:separate;border-spacing:2px}
table.grid th,table.grid td{border:0;padding:0 .3rem;white-space:nowrap}table.grid th.run{padding:0;font-size:11px;text-align:center}
td.cell{min-width:14px;height:16px;border-radius:3px;background:#e5e7eb;font-size:10px;text-align:center}td.cell.none{background:#fff;outline:1px dashed #dde2ea}
td.s-success{background:#34d399}td.s-failed{background:#f87171}td.s-upstream_failed{background:#fb923c}td.s-running{background:#60a5fa}
td.s-queued,td.s-scheduled{background:#d1d5db}td.s-deferred{background:#c4b5fd}td.s-up_for_retry{background:#fbbf24}td.s-skipped{background:#f9a8d4}td.s-cancelled{background:#a78bfa}
span.n{padding:0 2px;border-radius:2px;background:rgba(255,255,255,.7)}th.item{font-weight:400;color:#6b7685;padding-left:1rem}a.toggle{font-size:11px;font-weight:400}
th.run a.s-failed{color:#991b1b;font-weight:700}td.cell>a{display:block;min-height:16px;color:inherit;text-decoration:none}
svg.graph{max-width:100%;height:auto}svg.graph .edge{fill:none;stroke:#9aa5b4;stroke-width:1.5}svg.graph .tip{fill:#9aa5b4}
svg.graph rect{fill:#f3f4f6;stroke:#9aa5b4}svg.graph text{font:12px system-ui,sans-serif;fill:#1d2430}svg.graph text.st{font-size:11px;fill:#374151}
svg.graph .s-success rect{fill:#d1fae5;stroke:#059669}svg.graph .s-failed rect{fill:#fee2e2;stroke:#dc2626}
svg.graph .s-upstream_failed rect{fill:#ffedd5;stroke:#ea580c}svg.graph .s-running rect{fill:#dbeafe;stroke:#2563eb}
svg.graph .s-up_for_retry rect{fill:#fef3c7;stroke:#d97706}svg.graph .s-skipped rect{fill:#fce7f3;stroke:#db2777}
svg.graph .s-deferred rect,svg.graph .s-cancelled rect{fill:#ede9fe;stroke:#7c3aed}svg.graph .none rect{fill:#fff;stroke-dasharray:4 3}
</style>`);

/** An instant as its wall-clock time in `timezone`, with the zone's abbreviation. */
export function localTime(at: Date, timezone: string): string {
  return new Intl.DateTimeFormat('sv-SE', {
    timeZone: timezone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    timeZoneName: 'short',
    hourCycle: 'h23',
  }).format(at);
}

/** The next `count` ticks of the DAG's schedule after `from`. */
export function nextTicks(dag: Dag, from: Date, count = NEXT_TICKS): Date[] {
  const ticks: Date[] = [];
  for (let at: Date | null = from; ticks.length < count; ) {
    at = dag.timetable?.next(at) ?? null;
    if (!at) break;
    ticks.push(at);
  }
  return ticks;
}

const clock = (minutes: number) => `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

function scheduleSection(dag: Dag, paused: boolean, now: Date): SafeHtml {
  const zone = dag.schedule?.timezone ?? 'UTC';
  const ticks = nextTicks(dag, now);
  return html`<dl>
<dt>Description</dt><dd>${dag.description}</dd>
<dt>Owner</dt><dd>${dag.owner ?? html`<span class="muted">none</span>`}</dd>
<dt>State</dt><dd id="pause-state">${paused ? html`<span class="paused">paused</span> (the scheduler starts no runs)` : 'active'}</dd>
<dt>Schedule</dt><dd>${dag.schedule ? html`<code>${dag.schedule.cron}</code> in ${zone}${dag.catchup ? ' (catchup)' : ''}` : html`<span class="muted">manual only</span>`}</dd>
${
  ticks.length
    ? html`<dt>Next ticks</dt><dd><ol class="ticks">${ticks.map((t) => html`<li><time datetime="${t.toISOString()}">${localTime(t, zone)}</time> <span class="muted">${formatTime(t)}</span></li>`)}</ol></dd>`
    : ''
}
<dt>Start window</dt><dd>${dag.window ? `${clock(dag.window.start)}–${clock(dag.window.end)} (${zone})` : html`<span class="muted">none</span>`}</dd>
<dt>Deadline</dt><dd>${dag.deadline ? `${dag.deadline.text} after the logical date (${zone})` : html`<span class="muted">none</span>`}</dd>
<dt>Max active runs</dt><dd>${dag.maxActiveRuns}</dd>
<dt>Tags</dt><dd>${dag.tags.join(', ')}</dd>
<dt>File</dt><dd><code>${dag.file ?? '(defined in code)'}</code> · <a href="/api/dags">JSON</a></dd>
</dl>`;
}

function resourcesSection(rt: Runtime, dag: Dag): SafeHtml {
  const users = new Map<string, string[]>();
  for (const task of dag.tasks.values()) for (const r of task.uses) users.set(r, [...(users.get(r) ?? []), task.id]);
  if (!users.size) return html`<h2>Resources</h2><p class="muted">Its tasks use no declared resource.</p>`;
  return html`<h2>Resources</h2>
<table><tr><th>Resource</th><th>Description</th><th>Slots</th><th>Blackouts</th><th>On blackout</th><th>Used by</th></tr>
${[...users].map(([id, tasks]) => {
  const r = rt.dags.resources.get(id);
  return html`<tr><td><code>${id}</code></td><td>${r?.description ?? ''}</td><td class="num">${r?.slots ?? 'unlimited'}</td>
<td>${r?.blackouts.map((b) => html`<div>${b.describe}: ${b.reason}</div>`) ?? ''}</td><td>${r?.onBlackout ?? ''}</td><td>${tasks.map((t) => html`<code>${t}</code> `)}</td></tr>`;
})}
</table>`;
}

async function sourceSection(dag: Dag): Promise<SafeHtml> {
  if (!dag.file) return html``;
  try {
    const text = await readFile(dag.file, 'utf8');
    const shown = text.length > SOURCE_MAX ? `${text.slice(0, SOURCE_MAX)}\n… (${text.length - SOURCE_MAX} more characters)` : text;
    return html`<h2>Source</h2><p class="muted"><code>${dag.file}</code></p><pre class="source">${shown}</pre>`;
  } catch (err) {
    return html`<h2>Source</h2><p class="err">${dag.file} cannot be read: ${(err as Error).message}</p>`;
  }
}

/** The latest run's state per task, for the graph. */
function latestStates(data: GridData): Map<string, CellSummary> {
  const latest = data.runs.at(-1);
  const byTask = latest ? indexInstances(data.instances).get(latest.id) : undefined;
  const states = new Map<string, CellSummary>();
  for (const [task, tis] of byTask ?? []) {
    const summary = summarise(tis);
    if (summary) states.set(task, summary);
  }
  return states;
}

export interface DagPageOptions {
  runs: number;
  expand: string | undefined;
  now: Date;
  /** Whether the request may act: the page then has its trigger and pause buttons. */
  acting?: boolean;
}

/** The whole page body: settings, resources, graph, grid, source. */
export async function dagPage(rt: Runtime, dag: Dag, options: DagPageOptions): Promise<SafeHtml> {
  // The live token first: a change while the page is read shows on the next poll.
  const token = await gridToken(rt.db, dag.id, options.runs);
  const [paused, data, source] = await Promise.all([isPaused(rt.db, dag.id), getGridData(rt.db, dag.id, options.runs, options.expand), sourceSection(dag)]);
  return renderDagPage(rt, dag, { ...options, paused, data, source, token });
}

/** Rendering alone, apart from the store (the bench times it). */
export function renderDagPage(rt: Runtime, dag: Dag, o: DagPageOptions & { paused: boolean; data: GridData; source: SafeHtml; token: string }): SafeHtml {
  const base = `/dags/${encodeURIComponent(dag.id)}`;
  const link = (expand?: string) => {
    const q = new URLSearchParams();
    if (o.runs !== DEFAULT_RUNS) q.set('runs', String(o.runs));
    if (expand) q.set('expand', expand);
    const s = q.toString();
    return `${base}${s ? `?${s}` : ''}#grid`;
  };
  const latest = o.data.runs.at(-1);
  return html`${STYLE}<h1>DAG ${dag.id}${o.paused ? html` <span class="paused">paused</span>` : ''}</h1>
${scheduleSection(dag, o.paused, o.now)}
${o.acting ? dagActions(dag.id, o.paused) : ''}
${resourcesSection(rt, dag)}
${liveMarker(`/api/live/dags/${encodeURIComponent(dag.id)}?runs=${o.runs}`, o.token)}
<div data-live="dag">
<h2 id="graph">Graph</h2>
<p class="muted">${latest ? html`States of the latest run, <a href="/runs/${latest.id}">run ${latest.id}</a> (${latest.state}).` : 'No run yet.'}</p>
${dagGraph(dag, latestStates(o.data))}
<h2 id="grid">Grid</h2>
<p class="muted">${o.data.runs.length === 1 ? 'The latest run' : `The latest ${o.data.runs.length} runs, oldest left`} (<code>?runs=</code> up to ${MAX_RUNS}); a mapped task's cell counts its instances by state.</p>
${gridTable(dag, o.data, o.expand, link)}
</div>
${o.source}`;
}

function runsParam(value: string | undefined): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? Math.min(n, MAX_RUNS) : DEFAULT_RUNS;
}

export function registerDagPage(app: FastifyInstance, rt: Runtime): void {
  app.get<{ Params: { id: string }; Querystring: { runs?: string; expand?: string } }>('/dags/:id', async (request, reply) => {
    const dag = rt.dags.dags.get(request.params.id);
    if (!dag) return sendPage(reply, 404, 'No such DAG', html`<h1>No DAG ${request.params.id} is loaded</h1><p><a href="/">All DAGs</a></p>`);
    const expand = request.query.expand;
    const options = {
      runs: runsParam(request.query.runs),
      expand: expand && dag.tasks.get(expand)?.map ? expand : undefined,
      now: new Date(),
      acting: canAct(request),
    };
    return sendPage(reply, 200, `DAG ${dag.id}`, await dagPage(rt, dag, options));
  });
}
