import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { z } from 'zod';
import { jurisdiction } from '../../jurisdictions/index.ts';
import type { Manifest } from '../../tasks/filings/manifest.ts';
import { filingFolder, MANIFEST, readManifest } from '../../tasks/filings/outbox.ts';
import { periodOrFail } from '../../tasks/filings/period.ts';
import { openOutbox } from '../../tasks/resources.ts';
import type { Runtime } from '../runtime.ts';
import type { Store } from '../store/db.ts';
import type { DagRunRow } from '../store/schema.ts';
import { parseRunId } from './api.ts';
import { formatTime, html, type SafeHtml, stateBadge } from './html.ts';
import { sendPage } from './page-reply.ts';

/**
 * The outbox of a filing run: each filing its plan listed, with what its delivery task returned
 * (status, records, sha256, deadline, late) and what the outbox's manifest says now (file,
 * bytes, totals). The folder is found again from the filing's ids under this server's outbox,
 * never from a path stored in a result; a later run that re-filed the period is named.
 */

const item = z.object({ jurisdiction: z.string(), period: z.string(), tenant: z.string() });
const delivery = z.object({
  item,
  status: z.enum(['delivered', 'nothing']),
  records: z.number(),
  rejected: z.number(),
  sha256: z.string().nullable(),
  deadline: z.string(),
  late: z.boolean(),
});
type FilingItem = z.infer<typeof item>;

export interface OutboxFiling extends FilingItem {
  map_index: number;
  status: 'delivered' | 'nothing' | 'not delivered';
  records: number | null;
  rejected: number | null;
  sha256: string | null;
  deadline: Date | null;
  delivered_at: Date | null;
  /** Delivered after its deadline, or not delivered and past it. */
  late: boolean;
  /** Each mapped task's state for this filing, in the DAG's order: where an undelivered one stopped. */
  steps: { task_id: string; state: string }[];
  manifest: Manifest | null;
  /** Why the manifest shown is not this run's, or is not there. */
  manifest_note: string | null;
}

function deadlineOf(f: FilingItem): Date | null {
  try {
    return periodOrFail(jurisdiction(f.jurisdiction), f.period).deadline;
  } catch {
    return null;
  }
}

async function manifestOf(outboxDir: string, f: FilingItem, runId: number): Promise<Pick<OutboxFiling, 'manifest' | 'manifest_note'>> {
  try {
    const manifest = await readManifest(path.join(filingFolder(outboxDir, f), MANIFEST));
    if (!manifest) return { manifest: null, manifest_note: 'not in the outbox' };
    // A later run's manifest describes its own file: this run's totals are no longer on disk.
    if (manifest.runId !== runId) return { manifest: null, manifest_note: `replaced by run ${manifest.runId} (sha256 ${manifest.file.sha256.slice(0, 12)}…)` };
    return { manifest, manifest_note: null };
  } catch (err) {
    return { manifest: null, manifest_note: (err as Error).message };
  }
}

/** The filings of a run, or an empty list when no task of it planned filings. */
export async function getOutbox(db: Store, outboxDir: string, run: DagRunRow, order: readonly string[], now = new Date()): Promise<OutboxFiling[]> {
  const plans = await db
    .selectFrom('task_instances')
    .select(['task_id', 'result'])
    .where('run_id', '=', run.id)
    // A plan is an unmapped task: a run of 100,000 mapped instances is not read here.
    .where('map_index', '=', -1)
    .where(sql<boolean>`jsonb_typeof(result) = 'array' and result -> 0 ? 'jurisdiction' and result -> 0 ? 'tenant'`)
    .execute();
  const planned = plans.map((p) => z.array(item).safeParse(p.result)).find((p) => p.success)?.data;
  if (!planned?.length) return [];
  const mapped = await db
    .selectFrom('task_instances')
    .select(['task_id', 'map_index', 'state', 'result', 'ended_at'])
    .where('run_id', '=', run.id)
    .where('map_index', '>=', 0)
    .where('map_index', '<', planned.length)
    .execute();
  const rank = (t: string) => (order.includes(t) ? order.indexOf(t) : order.length);
  mapped.sort((a, b) => rank(a.task_id) - rank(b.task_id) || a.task_id.localeCompare(b.task_id));
  return Promise.all(
    planned.map(async (f, i) => {
      const own = mapped.filter((ti) => ti.map_index === i);
      const delivered = own.map((ti) => ({ ti, d: delivery.safeParse(ti.result) })).find((x) => x.d.success);
      const d = delivered?.d.data;
      const deadline = d ? new Date(d.deadline) : deadlineOf(f);
      const base = {
        ...f,
        map_index: i,
        deadline,
        steps: own.map((ti) => ({ task_id: ti.task_id, state: ti.state })),
      };
      if (!d) {
        return {
          ...base,
          status: 'not delivered' as const,
          records: null,
          rejected: null,
          sha256: null,
          delivered_at: null,
          late: deadline !== null && now > deadline,
          manifest: null,
          manifest_note: null,
        };
      }
      const m = d.status === 'delivered' ? await manifestOf(outboxDir, f, run.id) : { manifest: null, manifest_note: null };
      return {
        ...base,
        status: d.status,
        records: d.records,
        rejected: d.rejected,
        sha256: d.sha256,
        delivered_at: delivered!.ti.ended_at,
        late: d.late,
        ...m,
      };
    }),
  );
}

const money = (minor: number) => (minor / 100).toFixed(2);

function statusCell(f: OutboxFiling): SafeHtml {
  if (f.status === 'nothing') return html`<span class="muted">nothing to file</span>`;
  if (f.status === 'delivered') return f.late ? html`<span class="err">delivered late</span>` : html`delivered on time`;
  return html`<span class="err">not delivered${f.late ? ', past its deadline' : ''}</span>`;
}

/** The run page's section: one row per filing, linked to the full outbox page. */
export function outboxSection(runId: number, filings: OutboxFiling[]): SafeHtml {
  if (!filings.length) return html``;
  return html`<h2 id="outbox">Outbox</h2>
<p class="muted">${filings.length} filing${filings.length > 1 ? 's' : ''} planned · <a href="/runs/${runId}/outbox">files, totals and sha256</a></p>
<table class="outbox"><tr><th>Jurisdiction</th><th>Period</th><th>Tenant</th><th>Status</th><th>Records</th><th>Rejected</th><th>Deadline</th><th>Delivered</th></tr>
${filings.map(
  (
    f,
  ) => html`<tr data-filing="${f.jurisdiction}/${f.period}/${f.tenant}" data-status="${f.status}" data-late="${String(f.late)}"><td>${f.jurisdiction}</td><td>${f.period}</td><td>${f.tenant}</td>
<td>${statusCell(f)}</td><td class="num">${f.records ?? ''}</td><td class="num">${f.rejected ?? ''}</td><td>${formatTime(f.deadline)}</td><td>${formatTime(f.delivered_at)}</td></tr>`,
)}
</table>`;
}

function filingBlock(f: OutboxFiling): SafeHtml {
  const m = f.manifest;
  return html`<section class="filing" data-filing="${f.jurisdiction}/${f.period}/${f.tenant}" data-status="${f.status}" data-late="${String(f.late)}">
<h2>${f.jurisdiction} ${f.period} · ${f.tenant} — ${statusCell(f)}</h2>
<dl>
${m ? html`<dt>File</dt><dd><code>${m.file.name}</code> (${m.file.bytes} bytes)${m.test ? ' · test submission' : ''}</dd><dt>Title</dt><dd>${m.title} (${m.spec.name} ${m.spec.version})</dd>` : ''}
<dt>sha256</dt><dd><code>${f.sha256 ?? ''}</code></dd>
<dt>Records</dt><dd>${f.records ?? ''}${f.rejected ? html` · <span class="err">${f.rejected} rejected</span>` : ''}</dd>
<dt>Deadline</dt><dd>${formatTime(f.deadline)}</dd>
<dt>Delivered</dt><dd>${formatTime(f.delivered_at)}</dd>
${m ? html`<dt>Employer</dt><dd>${m.employer.legalName} <span class="muted">${m.employer.orgId}</span></dd><dt>Period</dt><dd>${m.period.start} → ${m.period.end} (tax year ${m.period.taxYear})</dd>` : ''}
${f.manifest_note ? html`<dt>Manifest</dt><dd class="err">${f.manifest_note}</dd>` : ''}
<dt>Steps</dt><dd>${f.steps.map((s) => html`<code>${s.task_id}</code> ${stateBadge(s.state)} `)}</dd>
</dl>
${
  m
    ? html`<table class="totals"><tr><th>Total</th><th>Minor units</th><th>Amount</th></tr>
${Object.entries(m.totals).map(([k, v]) => html`<tr><td><code>${k}</code></td><td class="num">${v}</td><td class="num">${money(v)}</td></tr>`)}
</table>`
    : ''
}
</section>`;
}

function outboxPage(run: DagRunRow, filings: OutboxFiling[], outboxDir: string): SafeHtml {
  const delivered = filings.filter((f) => f.status === 'delivered').length;
  return html`<h1>Outbox of <a href="/runs/${run.id}">run ${run.id}</a> of <a href="/dags/${run.dag_id}">${run.dag_id}</a> ${stateBadge(run.state)}</h1>
${
  filings.length
    ? html`<p class="muted">${filings.length} planned, ${delivered} delivered, ${filings.filter((f) => f.late).length} late; manifests read from <code>${outboxDir}</code>, money in minor units as the files state it.</p>
${filings.map(filingBlock)}`
    : html`<p class="muted">This run planned no filings.</p>`
}`;
}

export function registerOutboxPage(app: FastifyInstance, rt: Runtime): void {
  app.get<{ Params: { id: string } }>('/runs/:id/outbox', async (request, reply) => {
    const id = parseRunId(request.params.id);
    if (id === undefined) return sendPage(reply, 400, 'Bad run id', html`<h1>Bad run id</h1><p>${request.params.id} is not a run id.</p>`);
    const run = await rt.db.selectFrom('dag_runs').selectAll().where('id', '=', id).executeTakeFirst();
    if (!run) return sendPage(reply, 404, 'No such run', html`<h1>No run ${id}</h1><p><a href="/">All runs</a></p>`);
    const dir = openOutbox(rt.config).dir;
    const filings = await getOutbox(rt.db, dir, run, [...(rt.dags.dags.get(run.dag_id)?.tasks.keys() ?? [])]);
    return sendPage(reply, 200, `Outbox of run ${id}`, outboxPage(run, filings, dir));
  });
}
