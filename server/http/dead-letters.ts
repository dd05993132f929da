import type { FastifyInstance } from 'fastify';
import { listDeadLetters, type DeadLetter } from '../engine/actions.ts';
import type { Runtime } from '../runtime.ts';
import { actionButton, actionsScript, canAct } from './actions-ui.ts';
import { errorMessage, formatTime, html, type SafeHtml } from './html.ts';
import { itemLabel } from './dag-queries.ts';
import { sendPage } from './pages.ts';

const SHOWN = 500;
type Status = 'open' | 'resolved';

/** How long ago, in the largest whole unit that fits. */
function age(since: Date, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - new Date(since).getTime()) / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7_200) return `${Math.floor(s / 60)} min`;
  if (s < 172_800) return `${Math.floor(s / 3_600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

/** A mapped instance by its item (a tenant, say), else by its index: as the grid and run pages label it. */
function instanceLabel(l: DeadLetter): string {
  if (l.map_index < 0) return l.task_id;
  const label = itemLabel(l.map_item, l.map_index);
  return label.startsWith('[') ? `${l.task_id}${label}` : `${l.task_id}[${label}]`;
}

/** Links that filter by DAG, with each DAG's count of open letters. */
async function dagFilter(rt: Runtime, status: Status, dag: string | undefined): Promise<SafeHtml> {
  const counts = await rt.db
    .selectFrom('dead_letters')
    .select(['dag_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('resolved_at', status === 'open' ? 'is' : 'is not', null)
    .groupBy('dag_id')
    .orderBy('dag_id')
    .execute();
  const link = (d: string | undefined, label: string, n?: number) => {
    const q = new URLSearchParams();
    if (d) q.set('dag', d);
    if (status === 'resolved') q.set('status', 'resolved');
    const s = q.toString();
    return d === dag ? html`<strong>${label}</strong>` : html`<a href="/dead-letters${s ? `?${s}` : ''}">${label}</a>${n === undefined ? '' : ` (${n})`}`;
  };
  return html`<p id="dag-filter">DAG: ${link(undefined, 'all')}${counts.map((c) => html` · ${link(c.dag_id, c.dag_id, Number(c.n))}`)}</p>`;
}

function lettersTable(letters: DeadLetter[], status: Status, acting: boolean, now: Date): SafeHtml {
  if (!letters.length) return html`<p class="muted">No ${status} dead letters.</p>`;
  return html`<table id="dead-letters">
<tr>${acting ? html`<th><input type="checkbox" aria-label="select all" data-all="input[name=letter]"></th>` : ''}<th>Letter</th><th>DAG</th><th>Run</th><th>Logical date</th><th>Task</th><th>Tries</th><th>Error</th><th>Failed</th>${
    status === 'open' ? html`<th>Age</th>` : html`<th>Resolution</th><th>By</th>`
  }</tr>
${letters.map(
  (l) => html`<tr data-letter="${l.id}">
${acting ? html`<td><input type="checkbox" name="letter" value="${l.id}" aria-label="letter ${l.id}"></td>` : ''}
<td class="num">${l.id}</td><td><a href="/dags/${encodeURIComponent(l.dag_id)}">${l.dag_id}</a></td><td><a href="/runs/${l.run_id}">${l.run_id}</a></td>
<td>${formatTime(l.logical_date)}</td><td><code>${instanceLabel(l)}</code></td><td class="num">${l.tries}</td><td class="err">${errorMessage(l.error)}</td>
<td>${formatTime(l.created_at)}</td>${status === 'open' ? html`<td class="num">${age(l.created_at, now)}</td>` : html`<td>${l.resolution ?? ''} ${formatTime(l.resolved_at)}</td><td>${l.resolved_by ?? ''}</td>`}
</tr>`,
)}
</table>`;
}

function replayButtons(dag: string | undefined, count: number): SafeHtml {
  if (!count) return html``;
  return html`<div class="actions">
${actionButton('Replay selected', '/api/dead-letters/replay', {}, { pick: 'input[name=letter]', name: 'replay-selected', done: 'replayed' })}
${dag ? actionButton(`Replay every open letter of ${dag}`, '/api/dead-letters/replay', { dag }, { name: 'replay-dag', confirm: `Replay every open dead letter of ${dag}?`, done: 'replayed' }) : ''}
</div>`;
}

/** Newest and older links, keeping the filters. */
function pager(query: { dag?: string; status?: string; before?: string }, olderThan: number | undefined): SafeHtml {
  const href = (before?: number) => {
    const q = new URLSearchParams();
    if (query.dag) q.set('dag', query.dag);
    if (query.status === 'resolved') q.set('status', 'resolved');
    if (before !== undefined) q.set('before', String(before));
    const s = q.toString();
    return `/dead-letters${s ? `?${s}` : ''}`;
  };
  if (query.before === undefined && olderThan === undefined) return html``;
  return html`<p class="pager">${query.before === undefined ? '' : html`<a href="${href()}">newest</a>`}${
    olderThan === undefined ? '' : html` <a href="${href(olderThan)}" rel="next">older letters</a>`
  }</p>`;
}

export function registerDeadLettersPage(app: FastifyInstance, rt: Runtime): void {
  app.get<{ Querystring: { dag?: string; status?: string; before?: string } }>('/dead-letters', async (request, reply) => {
    const dag = request.query.dag || undefined;
    const status: Status = request.query.status === 'resolved' ? 'resolved' : 'open';
    const before = request.query.before === undefined ? undefined : Number(request.query.before);
    if (before !== undefined && !(Number.isSafeInteger(before) && before > 0))
      return sendPage(reply, 400, 'Bad page', html`<h1>Bad page</h1><p>before=${request.query.before ?? ''} is not a dead letter id.</p>`);
    const acting = canAct(request) && status === 'open';
    // One more than shown: whether an older page exists.
    const [found, filter] = await Promise.all([listDeadLetters(rt.db, { dagId: dag, status, before, limit: SHOWN + 1 }), dagFilter(rt, status, dag)]);
    const letters = found.slice(0, SHOWN);
    const other = status === 'open' ? html`<a href="/dead-letters?status=resolved">resolved letters</a>` : html`<a href="/dead-letters">open letters</a>`;
    const body = html`<h1>${status === 'open' ? 'Open dead letters' : 'Resolved dead letters'}${dag ? ` of ${dag}` : ''}</h1>
<p class="muted">Task instances that failed their last try. Replaying one clears it with fresh tries, and its downstream, so its run resumes;
a mapped task runs again whole. Newest first, ${SHOWN} a page. See also the ${other}.</p>
${filter}
${acting ? replayButtons(dag, letters.length) : ''}
${lettersTable(letters, status, acting, new Date())}
${pager(request.query, found.length > SHOWN ? letters.at(-1)!.id : undefined)}
${acting && letters.length ? actionsScript() : ''}`;
    return sendPage(reply, 200, 'Dead letters', body);
  });
}
