import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Runtime } from '../runtime.ts';
import type { Store } from '../store/db.ts';
import { parseRunId } from './api.ts';
import { formatTime, html, type SafeHtml } from './html.ts';
import { sendPage } from './page-reply.ts';

const RULE_GROUPS = 100;
const SAMPLE_KEYS = 3;
const REJECTS_PER_PAGE = 200;

/**
 * A run's rejects by the rule they broke, not by their message: a message names the value
 * (masked) and so differs per record, while an operator acts on "412 records broke `not_null`
 * on `birth_date`". A reject stored before rules were recorded is grouped by its reason.
 */
export interface RejectRule {
  task_id: string;
  entity: string;
  field: string;
  rule: string;
  records: number;
  /** The first few records' keys, as stored (identifiers masked where the task masks them). */
  sample_keys: string[];
}

export interface RejectFilter {
  task: string;
  entity: string;
  field: string;
  rule: string;
}

export async function rejectRules(db: Store, runId: number): Promise<RejectRule[]> {
  // Samples come from a LATERAL per group, so no group gathers all its keys to keep three.
  const { rows } = await sql<RejectRule & { records: string }>`
    select g.task_id, g.entity, g.field, g.rule, g.records, coalesce(s.keys, '{}') as sample_keys
      from (select task_id, entity, field, coalesce(rule, reason) as rule, count(*) as records
              from rejects where run_id = ${runId}
             group by task_id, entity, field, coalesce(rule, reason)
             order by records desc, task_id, entity, field, rule
             limit ${RULE_GROUPS}) g
      cross join lateral (
        select array_agg(k.record_key) as keys from (
          select record_key from rejects r
           where r.run_id = ${runId} and r.task_id = g.task_id and r.entity = g.entity and r.field = g.field
             and coalesce(r.rule, r.reason) = g.rule
           order by r.id limit ${SAMPLE_KEYS}) k) s
     order by g.records desc, g.task_id, g.entity, g.field, g.rule`.execute(db);
  return rows.map((r) => ({ ...r, records: Number(r.records) }));
}

export interface RejectRow {
  id: number;
  tenant_id: string | null;
  record_key: string;
  reason: string;
  created_at: Date;
}

/** One page of the rejects of one rule, oldest first, after the id `after` (keyset paging). */
export function rejectsOfRule(db: Store, runId: number, f: RejectFilter, after: number, limit: number): Promise<RejectRow[]> {
  return db
    .selectFrom('rejects')
    .select(['id', 'tenant_id', 'record_key', 'reason', 'created_at'])
    .where('run_id', '=', runId)
    .where('task_id', '=', f.task)
    .where('entity', '=', f.entity)
    .where('field', '=', f.field)
    .where(sql<string>`coalesce(rule, reason)`, '=', f.rule)
    .where('id', '>', after)
    .orderBy('id')
    .limit(limit)
    .execute();
}

export function rejectsLink(runId: number, f: RejectFilter, after?: number): string {
  const q = new URLSearchParams({ task: f.task, entity: f.entity, field: f.field, rule: f.rule });
  if (after) q.set('after', String(after));
  return `/runs/${runId}/rejects?${q}`;
}

/** The run page's section: one row per task, entity, field and rule, linked to its records. */
export function rejectRulesSection(runId: number, rules: RejectRule[]): SafeHtml {
  if (!rules.length) return html``;
  const total = rules.reduce((n, r) => n + r.records, 0);
  return html`<h2>Rejected records</h2>
<p class="muted">${total} records refused, by the rule they broke; each row links to its records. Kept in the store's <code>rejects</code> table.</p>
<table class="rejects"><tr><th>Task</th><th>Entity</th><th>Field</th><th>Rule</th><th>Records</th><th>Sample keys</th></tr>
${rules.map(
  (r) =>
    html`<tr data-rule="${r.rule}"><td><code>${r.task_id}</code></td><td>${r.entity}</td><td><code>${r.field}</code></td><td><code>${r.rule}</code></td><td class="num"><a href="${rejectsLink(runId, { task: r.task_id, entity: r.entity, field: r.field, rule: r.rule })}">${r.records}</a></td><td><code>${r.sample_keys.join(' ')}</code></td></tr>`,
)}
</table>`;
}

function rejectsPage(runId: number, dagId: string, f: RejectFilter, rows: RejectRow[], more: boolean): SafeHtml {
  const last = rows.at(-1);
  return html`<h1>Rejects of <a href="/runs/${runId}">run ${runId}</a> of ${dagId}</h1>
<dl><dt>Task</dt><dd><code>${f.task}</code></dd><dt>Entity</dt><dd>${f.entity}</dd><dt>Field</dt><dd><code>${f.field}</code></dd><dt>Rule</dt><dd><code>${f.rule}</code></dd></dl>
${
  rows.length
    ? html`<table><tr><th>#</th><th>Tenant</th><th>Record</th><th>Reason</th><th>Stored</th></tr>
${rows.map((r) => html`<tr><td class="num">${r.id}</td><td>${r.tenant_id ?? ''}</td><td><code>${r.record_key}</code></td><td class="err">${r.reason}</td><td>${formatTime(r.created_at)}</td></tr>`)}
</table>`
    : html`<p class="muted">No more records.</p>`
}
${more && last ? html`<p><a href="${rejectsLink(runId, f, last.id)}">next ${REJECTS_PER_PAGE}</a></p>` : ''}`;
}

export function registerRejects(app: FastifyInstance, rt: Runtime): void {
  app.get<{ Params: { id: string }; Querystring: Partial<Record<keyof RejectFilter | 'after', string>> }>('/runs/:id/rejects', async (request, reply) => {
    const id = parseRunId(request.params.id);
    const { task, entity, field, rule } = request.query;
    const after = Number(request.query.after ?? 0);
    if (id === undefined || !task || !entity || !field || !rule || !Number.isSafeInteger(after) || after < 0) {
      const problem = id === undefined ? `${request.params.id} is not a run id` : 'task, entity, field and rule name the rejects to list; after is a reject id';
      return sendPage(reply, 400, 'Bad request', html`<h1>Bad request</h1><p>${problem}.</p>`);
    }
    const run = await rt.db.selectFrom('dag_runs').select(['id', 'dag_id']).where('id', '=', id).executeTakeFirst();
    if (!run) return sendPage(reply, 404, 'No such run', html`<h1>No run ${id}</h1><p><a href="/">All runs</a></p>`);
    const f = { task, entity, field, rule };
    const rows = await rejectsOfRule(rt.db, id, f, after, REJECTS_PER_PAGE + 1);
    return sendPage(reply, 200, `Rejects of run ${id}`, rejectsPage(id, run.dag_id, f, rows.slice(0, REJECTS_PER_PAGE), rows.length > REJECTS_PER_PAGE));
  });
}
