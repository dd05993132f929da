import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../runtime.ts';
import { formatDuration, formatSeconds } from '../engine/duration.ts';
import { DEFAULT_WINDOW_MS, measureIntegrations, parseWindow, type IntegrationStatus, type SloCheck } from '../engine/integrations.ts';
import { sendError } from './errors.ts';
import { html, type SafeHtml } from './html.ts';
import { sendPage } from './pages.ts';

type WindowQuery = { Querystring: { window?: string } };

const pct = (r: number) => `${(r * 100).toFixed(2)}%`;

/** A measured value or objective in its unit. */
function shown(c: SloCheck, value: number | null): string {
  if (value === null) return '—';
  if (c.unit === 'burn') return `${value.toFixed(1)}×`;
  return c.unit === 'ratio' ? pct(value) : c.unit === 'seconds' ? formatSeconds(value) : String(value);
}

/** Whether a latency was measured (and from which change times) or is the run-end proxy. */
function latencyLabel(s: IntegrationStatus): string {
  if (s.sli.latencySource === 'measured') return `measured: ${s.sli.latencyMeasured} from ${s.sli.latencyFrom.join(', ')}`;
  return s.sli.latencySource === 'proxy' ? 'proxy: run end − interval end' : '';
}

function integrationRows(s: IntegrationStatus): SafeHtml {
  return html`${s.slos.map(
    (c, i) => html`<tr>
${i === 0 ? html`<td rowspan="${s.slos.length}"><strong>${s.integration}</strong><br><span class="muted">${s.pattern} → ${s.target}</span></td><td rowspan="${s.slos.length}">${s.dag}</td><td rowspan="${s.slos.length}">${s.owner ?? ''}</td>` : ''}
<td><code>${c.slo}</code></td><td class="num">${shown(c, c.measured)}${c.unit === 'seconds' && c.slo.startsWith('latency') ? html`<br><span class="muted">${latencyLabel(s)}</span>` : ''}</td><td class="num">${shown(c, c.objective)}</td>
<td>${c.met ? html`<span class="state s-success">met</span>` : html`<span class="state s-failed">breached</span>`}</td></tr>`,
  )}`;
}

function integrationsPage(statuses: IntegrationStatus[], windowMs: number): SafeHtml {
  const breached = statuses.filter((s) => !s.met).length;
  return html`<h1>Integrations</h1>
<p>SLIs over the last ${formatDuration(windowMs)} (<a href="/api/integrations?window=${formatDuration(windowMs)}">JSON</a>);
${breached ? html`<span class="err">${breached} of ${statuses.length} breach an SLO</span>` : `all ${statuses.length} meet their SLOs`}.
Latency is measured per version (hub change to warehouse commit) and per filing (data cut to delivery) where recorded;
otherwise a proxy, a scheduled run's end minus its data cut (the interval's end). Dead letters count while open.</p>
${
  statuses.length
    ? html`<table><tr><th>Integration</th><th>DAG</th><th>Owner</th><th>SLO</th><th>Measured</th><th>Objective</th><th>Status</th></tr>
${statuses.map(integrationRows)}</table>`
    : html`<p class="muted">No loaded DAG declares an integration.</p>`
}`;
}

/** GET /api/integrations and the /integrations page: each integration's SLIs, SLOs and verdict. */
export function registerIntegrations(app: FastifyInstance, rt: Runtime): void {
  const windowOf = (value: string | undefined) => (value === undefined ? DEFAULT_WINDOW_MS : parseWindow(value));

  app.get<WindowQuery>('/api/integrations', async (request, reply) => {
    const windowMs = windowOf(request.query.window);
    if (typeof windowMs === 'string') return sendError(reply, 400, `window: ${windowMs}`);
    const integrations = await measureIntegrations(rt.db, rt.dags.dags.values(), windowMs);
    return { window: formatDuration(windowMs), integrations, breached: integrations.filter((s) => !s.met).length };
  });

  app.get<WindowQuery>('/integrations', async (request, reply) => {
    const windowMs = windowOf(request.query.window);
    if (typeof windowMs === 'string') return sendPage(reply, 400, 'Bad window', html`<h1>Bad window</h1><p>${windowMs}</p>`);
    const statuses = await measureIntegrations(rt.db, rt.dags.dags.values(), windowMs);
    return sendPage(reply, 200, 'Integrations', integrationsPage(statuses, windowMs));
  });
}
