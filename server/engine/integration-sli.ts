import { sql } from 'kysely';
import type { Store } from '../store/db.ts';
import type { Dag } from './dag.ts';
import { formatDuration, formatSeconds } from './duration.ts';
import type { Integration } from './integration-spec.ts';
import { latencyOverWindow, quantile, type LatencySource } from './sync-latency.ts';

export const DEFAULT_WINDOW_MS = 7 * 86_400_000;

export const SLO_NAMES = ['success_rate', 'error_budget_burn', 'latency_p50', 'latency_p99', 'dead_letter_depth', 'dead_letter_dwell'] as const;

/**
 * A fast burn: the last hour's failure ratio at 14.4 times the error budget (1 - successRate)
 * spends a 7-day budget in under 12 hours. The SRE workbook's page-now threshold; it alerts
 * long before the window's success rate falls below its SLO.
 */
export const FAST_BURN = 14.4;
const BURN_WINDOW = sql`now() - interval '1 hour'`;
export type SloName = (typeof SLO_NAMES)[number];

/** One SLO against its indicator; an indicator with nothing to measure (no runs in the window) meets it. */
export interface SloCheck {
  slo: SloName;
  unit: 'ratio' | 'seconds' | 'count' | 'burn';
  objective: number;
  measured: number | null;
  met: boolean;
  /** The sentence an alert says. */
  summary: string;
}

export interface IntegrationStatus {
  integration: string;
  dag: string;
  target: string;
  pattern: Integration['pattern'];
  owner: string | null;
  windowSeconds: number;
  sli: {
    finishedRuns: number;
    succeededRuns: number;
    successRate: number | null;
    /** The last hour's failure ratio over the error budget; null with no finished runs in the hour. */
    burnRate1h: number | null;
    latencyP50Seconds: number | null;
    latencyP99Seconds: number | null;
    /**
     * Where the latency percentiles come from: `measured` (histograms of each version's or
     * filing's own latency, see sync-latency.ts), `proxy` (no measurements in the window: a
     * scheduled run's end minus its interval end), or null (neither).
     */
    latencySource: 'measured' | 'proxy' | null;
    /** How many versions or filings were measured in the window, and from which change times. */
    latencyMeasured: number;
    latencyFrom: LatencySource[];
    deadLetters: number;
    deadLetterDwellSeconds: number | null;
  };
  slos: SloCheck[];
  met: boolean;
}

interface Measured {
  finished: number;
  succeeded: number;
  recentFinished: number;
  recentFailed: number;
  p50: number | null;
  p99: number | null;
  latencySource: 'measured' | 'proxy' | null;
  latencyMeasured: number;
  latencyFrom: LatencySource[];
  deadLetters: number;
  dwell: number | null;
}

// The proxy where nothing was measured: a successful scheduled run's end minus its interval's
// end (the data's cut); a manual or backfill run of an old interval would read as days late.
// Test runs count nowhere.
const latency = (q: number) =>
  sql<number | null>`percentile_cont(${sql.lit(q)}) within group (order by extract(epoch from ended_at - interval_end)::float8)
    filter (where state = 'success' and run_type = 'scheduled')`;

/** The SLIs of each DAG over the window ending now, read from the store in one query per table. */
async function measure(db: Store, declared: Dag[], windowMs: number): Promise<Map<string, Measured>> {
  const dagIds = declared.map((d) => d.id);
  const since = sql<Date>`now() - make_interval(secs => ${windowMs / 1000})`;
  const [runs, letters, measuredLatency] = await Promise.all([
    db
      .selectFrom('dag_runs')
      .select([
        'dag_id',
        sql<string>`count(*) filter (where state in ('success', 'failed'))`.as('finished'),
        sql<string>`count(*) filter (where state = 'success')`.as('succeeded'),
        sql<string>`count(*) filter (where state in ('success', 'failed') and ended_at > ${BURN_WINDOW})`.as('recent_finished'),
        sql<string>`count(*) filter (where state = 'failed' and ended_at > ${BURN_WINDOW})`.as('recent_failed'),
        latency(0.5).as('p50'),
        latency(0.99).as('p99'),
      ])
      .where('dag_id', 'in', dagIds)
      .where('run_type', '!=', 'test')
      .where('ended_at', '>', since)
      .groupBy('dag_id')
      .execute(),
    db
      .selectFrom('dead_letters')
      .select(['dag_id', (eb) => eb.fn.countAll<string>().as('n'), sql<number>`extract(epoch from now() - min(created_at))::float8`.as('dwell')])
      .where('dag_id', 'in', dagIds)
      .where('resolved_at', 'is', null)
      .groupBy('dag_id')
      .execute(),
    latencyOverWindow(
      db,
      declared.map((d) => ({ id: d.id, integration: d.integration!.name })),
      windowMs,
    ),
  ]);
  const out = new Map<string, Measured>(
    dagIds.map((id) => [
      id,
      {
        finished: 0,
        succeeded: 0,
        recentFinished: 0,
        recentFailed: 0,
        p50: null,
        p99: null,
        latencySource: null,
        latencyMeasured: 0,
        latencyFrom: [],
        deadLetters: 0,
        dwell: null,
      },
    ]),
  );
  for (const r of runs)
    Object.assign(out.get(r.dag_id)!, {
      finished: Number(r.finished),
      succeeded: Number(r.succeeded),
      recentFinished: Number(r.recent_finished),
      recentFailed: Number(r.recent_failed),
      p50: r.p50,
      p99: r.p99,
      latencySource: r.p50 === null ? null : 'proxy',
    });
  for (const [dagId, l] of measuredLatency) {
    if (!l.histogram.count) continue;
    Object.assign(out.get(dagId)!, {
      p50: quantile(l.histogram, 0.5),
      p99: quantile(l.histogram, 0.99),
      latencySource: 'measured',
      latencyMeasured: l.histogram.count,
      latencyFrom: l.sources,
    });
  }
  for (const d of letters) Object.assign(out.get(d.dag_id)!, { deadLetters: Number(d.n), dwell: Math.max(0, d.dwell) });
  return out;
}

const pct = (r: number) => `${(r * 100).toFixed(2)}%`;

/** The last hour's burn rate; null when nothing finished in it or the budget is zero (any failure then breaches). */
function burnRate(m: Measured, successRate: number): number | null {
  const budget = 1 - successRate;
  return m.recentFinished && budget > 0 ? m.recentFailed / m.recentFinished / budget : null;
}

function burnCheck(m: Measured, successRate: number): SloCheck {
  const burn = burnRate(m, successRate);
  const met = burn === null ? m.recentFailed === 0 : burn < FAST_BURN;
  const measured = m.recentFinished ? `${m.recentFailed} of ${m.recentFinished} runs failed in the last hour` : 'no finished runs in the last hour';
  const rate = burn === null ? '' : `, burning the error budget ${burn.toFixed(1)}x`;
  return { slo: 'error_budget_burn', unit: 'burn', objective: FAST_BURN, measured: burn, met, summary: `${measured}${rate}; alert at ${FAST_BURN}x` };
}

/** What a latency figure rests on, in the words an alert uses. */
export function latencyBasis(m: Pick<Measured, 'latencySource' | 'latencyMeasured' | 'latencyFrom'>): string {
  if (m.latencySource === 'measured') return `(measured: ${m.latencyMeasured} versions or filings, from ${m.latencyFrom.join(', ')})`;
  return '(proxy: run end minus interval end, nothing measured)';
}

function checks(integration: Integration, m: Measured, window: string): SloCheck[] {
  const { latencyMs, successRate, deadLetters } = integration.slo;
  const out: SloCheck[] = [];
  if (successRate !== undefined) {
    const rate = m.finished ? m.succeeded / m.finished : null;
    const met = rate === null || rate >= successRate;
    const measured = rate === null ? 'no finished runs' : `${pct(rate)} (${m.succeeded} of ${m.finished} finished runs succeeded)`;
    out.push({
      slo: 'success_rate',
      unit: 'ratio',
      objective: successRate,
      measured: rate,
      met,
      summary: `success rate over ${window}: ${measured}; SLO ${pct(successRate)}`,
    });
    out.push(burnCheck(m, successRate));
  }
  if (latencyMs) {
    for (const [slo, value, objective] of [
      ['latency_p50', m.p50, latencyMs.p50],
      ['latency_p99', m.p99, latencyMs.p99],
    ] as const) {
      const met = value === null || value * 1000 <= objective;
      const measured = value === null ? 'no measurements and no successful scheduled runs' : `${formatSeconds(value)} ${latencyBasis(m)}`;
      out.push({
        slo,
        unit: 'seconds',
        objective: objective / 1000,
        measured: value,
        met,
        summary: `${slo.replace('_', ' ')} over ${window}: ${measured}; SLO ${formatDuration(objective)}`,
      });
    }
  }
  if (deadLetters) {
    out.push({
      slo: 'dead_letter_depth',
      unit: 'count',
      objective: deadLetters.depth,
      measured: m.deadLetters,
      met: m.deadLetters <= deadLetters.depth,
      summary: `open dead letters: ${m.deadLetters}; SLO at most ${deadLetters.depth}`,
    });
    out.push({
      slo: 'dead_letter_dwell',
      unit: 'seconds',
      objective: deadLetters.dwellMs / 1000,
      measured: m.dwell,
      met: m.dwell === null || m.dwell * 1000 <= deadLetters.dwellMs,
      summary: `oldest open dead letter: ${m.dwell === null ? 'none' : formatSeconds(m.dwell)}; SLO at most ${formatDuration(deadLetters.dwellMs)}`,
    });
  }
  return out;
}

/** Every loaded DAG that declares an integration, with its SLIs over the window and each SLO met or not. */
export async function measureIntegrations(db: Store, dags: Iterable<Dag>, windowMs = DEFAULT_WINDOW_MS): Promise<IntegrationStatus[]> {
  const declared = [...dags].filter((d) => d.integration).sort((a, b) => a.integration!.name.localeCompare(b.integration!.name) || a.id.localeCompare(b.id));
  if (!declared.length) return [];
  const measured = await measure(db, declared, windowMs);
  return declared.map((dag) => {
    const integration = dag.integration!;
    const m = measured.get(dag.id)!;
    const slos = checks(integration, m, formatDuration(windowMs));
    return {
      integration: integration.name,
      dag: dag.id,
      target: integration.target,
      pattern: integration.pattern,
      owner: integration.owner ?? null,
      windowSeconds: windowMs / 1000,
      sli: {
        finishedRuns: m.finished,
        succeededRuns: m.succeeded,
        successRate: m.finished ? m.succeeded / m.finished : null,
        burnRate1h: integration.slo.successRate === undefined ? null : burnRate(m, integration.slo.successRate),
        latencyP50Seconds: m.p50,
        latencyP99Seconds: m.p99,
        latencySource: m.latencySource,
        latencyMeasured: m.latencyMeasured,
        latencyFrom: m.latencyFrom,
        deadLetters: m.deadLetters,
        deadLetterDwellSeconds: m.dwell,
      },
      slos,
      met: slos.every((c) => c.met),
    };
  });
}
