import { html, SafeHtml } from './html.ts';
import { RUN_STATES, RUN_TYPES, type RunState, type RunType } from '../store/schema.ts';
import type { RunFilter } from './queries.ts';

export const RUNS_PER_PAGE = 50;
export const MAX_RUNS_PER_PAGE = 1_000;
const DAY = 86_400_000;

/** The runs list's query string: each key as the filter form sends it (an empty field is no filter). */
export type RunsQuery = Partial<Record<'dag' | 'state' | 'type' | 'from' | 'to' | 'before' | 'limit', string>>;

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** A bare date is the UTC day; `to` takes the whole of its day. A date-time needs its offset. */
function instant(value: string, field: 'from' | 'to'): Date | string {
  const bare = DATE.test(value);
  const at = new Date(bare ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(at.getTime()) || (!bare && !/(Z|[+-]\d{2}:\d{2})$/.test(value)))
    return `${field}: '${value}' is not a date (YYYY-MM-DD) or a date-time with its offset`;
  return bare && field === 'to' ? new Date(at.getTime() + DAY) : at;
}

function positive(value: string, field: string): number | string {
  const n = Number(value);
  return /^\d{1,15}$/.test(value) && n > 0 ? n : `${field}: '${value}' is not a positive whole number`;
}

/** The filter the runs list and its live endpoint read, or what is wrong with the query (naming the field). */
export function parseRunsQuery(query: RunsQuery): RunFilter | string {
  const q = Object.fromEntries(Object.entries(query).filter(([, v]) => typeof v === 'string' && v.trim() !== '')) as RunsQuery;
  const filter: RunFilter = { limit: RUNS_PER_PAGE };
  if (q.dag) filter.dag = q.dag;
  if (q.state) {
    if (!(RUN_STATES as readonly string[]).includes(q.state)) return `state: '${q.state}' is not one of ${RUN_STATES.join(', ')}`;
    filter.state = q.state as RunState;
  }
  if (q.type) {
    if (!(RUN_TYPES as readonly string[]).includes(q.type)) return `type: '${q.type}' is not one of ${RUN_TYPES.join(', ')}`;
    filter.runType = q.type as RunType;
  }
  for (const field of ['from', 'to'] as const) {
    const value = q[field];
    if (!value) continue;
    const at = instant(value, field);
    if (typeof at === 'string') return at;
    filter[field] = at;
  }
  if (filter.from && filter.to && filter.from >= filter.to) return `to: '${q.to}' is not after from '${q.from}'`;
  if (q.before) {
    const before = positive(q.before, 'before');
    if (typeof before === 'string') return before;
    filter.before = before;
  }
  if (q.limit) {
    const limit = positive(q.limit, 'limit');
    if (typeof limit === 'string') return limit;
    filter.limit = Math.min(limit, MAX_RUNS_PER_PAGE);
  }
  return filter;
}

/** The query string of a filter's page (for links that keep the filter: older, newer, live). */
export function runsQueryString(query: RunsQuery, changes: RunsQuery = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...query, ...changes })) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** A select's options, `any` first, the chosen one selected. */
export function selectOptions(values: readonly string[], chosen: string | undefined): SafeHtml {
  const selected = new SafeHtml(' selected');
  return html`<option value="">any</option>${values.map((v) => html`<option value="${v}"${v === chosen ? selected : ''}>${v}</option>`)}`;
}
