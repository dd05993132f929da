import type { Dag } from '../engine/dag.ts';
import { TI_STATES } from '../store/schema.ts';
import type { GridData, GridInstance } from './dag-queries.ts';
import { formatTime, html, type SafeHtml } from './html.ts';

// The state a mapped task's cell takes from its instances: the one an operator must see first.
const PRECEDENCE = ['failed', 'upstream_failed', 'up_for_retry', 'running', 'deferred', 'queued', 'scheduled', 'cancelled', 'skipped', 'success'];
const KNOWN = new Set<string>(TI_STATES);

/** A class name from a state; unknown states get the neutral class rather than one built from data. */
export function stateClass(state: string): string {
  return `s-${KNOWN.has(state) ? state : 'unknown'}`;
}

/** Instances of one task in one run: the state counts and the state the cell shows. */
export interface CellSummary {
  state: string;
  counts: [state: string, n: number][];
  mapped: boolean;
}

export function summarise(instances: readonly GridInstance[]): CellSummary | undefined {
  if (!instances.length) return undefined;
  const counts = new Map<string, number>();
  for (const ti of instances) counts.set(ti.state, (counts.get(ti.state) ?? 0) + 1);
  const ordered = [...counts].sort((a, b) => rank(a[0]) - rank(b[0]));
  return { state: ordered[0]![0], counts: ordered, mapped: instances.some((ti) => ti.map_index >= 0) };
}

function rank(state: string): number {
  const i = PRECEDENCE.indexOf(state);
  return i < 0 ? PRECEDENCE.length : i;
}

/** Instances by run and task. */
export function indexInstances(instances: readonly GridInstance[]): Map<number, Map<string, GridInstance[]>> {
  const byRun = new Map<number, Map<string, GridInstance[]>>();
  for (const ti of instances) {
    let byTask = byRun.get(ti.run_id);
    if (!byTask) byRun.set(ti.run_id, (byTask = new Map()));
    const list = byTask.get(ti.task_id);
    if (list) list.push(ti);
    else byTask.set(ti.task_id, [ti]);
  }
  return byRun;
}

const countsText = (counts: CellSummary['counts']) => counts.map(([s, n]) => `${n} ${s}`).join(', ');

/**
 * Where a cell leads: a short path (20,000 cells stay light) that the run page redirects to the
 * page and row of the task's instance (its item's when mapped), so a failed cell is one click
 * from its error. Task ids are URL-safe by the DAG rules.
 */
export function instanceHref(runId: number, taskId: string, mapIndex: number | undefined): string {
  return mapIndex !== undefined && mapIndex >= 0 ? `/runs/${runId}/t/${taskId}/${mapIndex}` : `/runs/${runId}/t/${taskId}`;
}

function cell(runId: number, label: string, summary: CellSummary | undefined, href: string): SafeHtml {
  if (!summary) return html`<td class="cell none" title="run ${runId} · ${label}: no instance"></td>`;
  const title = `run ${runId} · ${label}: ${summary.mapped ? countsText(summary.counts) : summary.state}`;
  return html`<td class="cell ${stateClass(summary.state)}" data-state="${summary.state}" title="${title}"><a href="${href}">${
    summary.mapped ? summary.counts.map(([s, n]) => html`<span class="n ${stateClass(s)}" title="${s}">${n}</span>`) : ''
  }</a></td>`;
}

/** The rows of an expanded mapped task: one per item, labelled by it, across the runs. */
function itemRows(data: GridData, taskId: string, byRun: Map<number, Map<string, GridInstance[]>>): SafeHtml[] {
  const labels = new Map(data.items.map((i) => [`${i.run_id}:${i.map_index}`, i.label]));
  const byLabel = new Map<string, Map<number, GridInstance>>();
  for (const run of data.runs) {
    for (const ti of byRun.get(run.id)?.get(taskId) ?? []) {
      const label = labels.get(`${run.id}:${ti.map_index}`) ?? `[${ti.map_index}]`;
      let perRun = byLabel.get(label);
      if (!perRun) byLabel.set(label, (perRun = new Map()));
      perRun.set(run.id, ti);
    }
  }
  return [...byLabel.keys()]
    .sort((a, b) => a.localeCompare(b))
    .map(
      (label) =>
        html`<tr class="item" data-task="${taskId}" data-item="${label}"><th scope="row" class="item">↳ ${label}</th>${data.runs.map((run) => {
          const ti = byLabel.get(label)?.get(run.id);
          const summary: CellSummary | undefined = ti && { state: ti.state, counts: [[ti.state, 1]], mapped: false };
          return cell(run.id, `${taskId} ${label}`, summary, instanceHref(run.id, taskId, ti?.map_index));
        })}</tr>`,
    );
}

/** Recent runs (columns, oldest left) × the DAG's tasks (rows, upstreams first), coloured by state. */
export function gridTable(dag: Dag, data: GridData, expand: string | undefined, link: (expand?: string) => string): SafeHtml {
  if (!data.runs.length) return html`<p class="muted">No runs yet.</p>`;
  const byRun = indexInstances(data.instances);
  const rows = [...dag.tasks.values()].map((task) => {
    const mapped = task.map !== undefined;
    const open = mapped && expand === task.id;
    const toggle = mapped ? html` <a class="toggle" href="${link(open ? undefined : task.id)}">${open ? 'collapse' : 'expand'}</a>` : '';
    const row = html`<tr data-task="${task.id}"><th scope="row"><code>${task.id}</code>${toggle}</th>${data.runs.map((run) =>
      cell(run.id, task.id, summarise(byRun.get(run.id)?.get(task.id) ?? []), instanceHref(run.id, task.id, mapped ? 0 : undefined)),
    )}</tr>`;
    return open ? [row, ...itemRows(data, task.id, byRun)] : [row];
  });
  return html`<div class="gridwrap"><table class="grid">
<tr><th>Task</th>${data.runs.map(
    (run) =>
      html`<th class="run"><a class="${stateClass(run.state)}" href="/runs/${run.id}" title="run ${run.id} (${run.run_type}) ${formatTime(run.logical_date)}: ${run.state}">${run.id}</a></th>`,
  )}</tr>
${rows}
</table></div>`;
}
