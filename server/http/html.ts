/** Markup that has already been escaped (or written by us); everything else is escaped on the way in. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/**
 * Tagged template: every interpolated value is escaped unless it is SafeHtml, so a DAG id,
 * an error message or a conf value can never become markup. Attribute values must be quoted.
 */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new SafeHtml(out);
}

const KNOWN_STATES = new Set([
  'queued',
  'running',
  'success',
  'failed',
  'scheduled',
  'up_for_retry',
  'upstream_failed',
  'skipped',
  'cancelled',
  'retry',
  'lost',
]);

/** A coloured badge; unknown states get the neutral colour rather than a class built from data. */
export function stateBadge(state: string): SafeHtml {
  const cls = KNOWN_STATES.has(state) ? state : 'unknown';
  return html`<span class="state s-${cls}">${state}</span>`;
}

export function formatTime(value: Date | string | null | undefined): string {
  if (!value) return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime())
    ? ''
    : d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}

export function formatDuration(start: Date | string | null | undefined, end: Date | string | null | undefined): string {
  if (!start || !end) return '';
  const ms = new Date(end).getTime() - new Date(start).getTime();
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const s = Math.round(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)} m ${s % 60} s`;
  return `${Math.floor(s / 3_600)} h ${Math.floor((s % 3_600) / 60)} m`;
}

/** The `message` of a stored error ({ name, message, stack }), or its JSON when it has another shape. */
export function errorMessage(error: unknown): string {
  if (error === null || error === undefined) return '';
  if (typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') {
    const { name, message } = error as { name?: unknown; message: string };
    return typeof name === 'string' && name !== 'Error' ? `${name}: ${message}` : message;
  }
  return typeof error === 'string' ? error : JSON.stringify(error);
}

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 1.5rem;color:#1d2430}
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
a{color:#1f5fbf;text-decoration:none}a:hover{text-decoration:underline}
nav{display:flex;gap:1.2rem;border-bottom:1px solid #dde2ea;padding-bottom:.6rem;margin-bottom:1rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eceff4;vertical-align:top}
th{font-weight:600;background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,monospace;font-size:12px}pre{background:#f6f8fa;padding:.6rem;overflow:auto}
.muted{color:#6b7685}.err{color:#9b1c1c;white-space:pre-wrap;max-width:40rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:#6b7685}dd{margin:0}
.state{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:12px;background:#e5e7eb;color:#374151}
.s-success{background:#d1fae5;color:#065f46}.s-failed,.s-lost{background:#fee2e2;color:#991b1b}
.s-running{background:#dbeafe;color:#1e40af}.s-queued,.s-scheduled{background:#f3f4f6;color:#4b5563}
.s-up_for_retry,.s-retry{background:#fef3c7;color:#92400e}.s-upstream_failed{background:#ffedd5;color:#9a3412}
.s-skipped{background:#fce7f3;color:#9d174d}.s-cancelled{background:#ede9fe;color:#5b21b6}.paused{color:#92400e;font-weight:600}
`;

export function page(title: string, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · hubflow</title><style>${new SafeHtml(STYLE)}</style></head>
<body><nav><a href="/"><strong>hubflow</strong></a><a href="/">DAGs &amp; runs</a><a href="/integrations">integrations</a><a href="/sla">SLA misses</a><a href="/dead-letters">dead letters</a><a href="/admin/queues">queues (bull-board)</a><a href="/metrics">metrics</a></nav>
${body}
</body></html>`.value;
}
