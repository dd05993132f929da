import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { DagRunRow } from '../store/schema.ts';
import type { Dag } from './dag.ts';
import type { Engine } from './engine.ts';
import { fromLocal, toLocal } from './timetable.ts';

const DAY = 86_400_000;

/**
 * The start window of a DAG that `at` falls in, or the next one to open after it. Windows are
 * local times in the schedule's zone; one whose end is before its start closes the next day.
 */
export function windowFor(dag: Dag, at: Date): { start: Date; end: Date } | undefined {
  if (!dag.window || !dag.schedule) return undefined;
  const { start, end } = dag.window;
  const tz = dag.schedule.timezone;
  const local = toLocal(at, tz);
  // Today's window, yesterday's (which may still be open if it crosses midnight), tomorrow's.
  for (const dayOffset of [-1, 0, 1]) {
    const open = fromLocal({ year: local.year, month: local.month, day: local.day + dayOffset, hour: Math.floor(start / 60), minute: start % 60 }, tz);
    const closeDay = local.day + dayOffset + (end <= start ? 1 : 0);
    const close = fromLocal({ year: local.year, month: local.month, day: closeDay, hour: Math.floor(end / 60), minute: end % 60 }, tz);
    if (at < close) return { start: open, end: close };
  }
  return undefined;
}

/** When a run of `dag` with this logical date must be finished: the logical date plus the deadline, in local calendar terms. */
export function deadlineFor(dag: Dag, logicalDate: Date): Date | undefined {
  if (!dag.deadline || !dag.schedule) return undefined;
  const d = dag.deadline;
  const l = toLocal(logicalDate, dag.schedule.timezone);
  // Months first, then days: 31 January plus P1M1D is 1 March (the month clamps to 28/29 February first).
  const monthIndex = l.month - 1 + d.months + d.years * 12;
  const year = l.year + Math.floor(monthIndex / 12);
  const month = (monthIndex % 12) + 1;
  const day = Math.min(l.day, new Date(Date.UTC(year, month, 0)).getUTCDate()) + d.days;
  const base = fromLocal({ year, month, day, hour: l.hour + d.hours, minute: l.minute + d.minutes }, dag.schedule.timezone);
  return new Date(base.getTime() + d.seconds * 1000 + d.milliseconds);
}

/** A run's start jitter: the same for the same DAG and logical date, whichever scheduler asks. */
export function startJitterMs(dag: Dag, logicalDate: Date): number {
  if (!dag.jitterMs) return 0;
  const hash = createHash('sha256').update(`${dag.id}|${logicalDate.toISOString()}`).digest();
  return hash.readUInt32BE(0) % (dag.jitterMs + 1);
}

/** When a scheduled run becomes due: its interval's end plus jitter, and not before its start window opens. */
export function dueAt(dag: Dag, logicalDate: Date, intervalEnd: Date): Date {
  const due = new Date(intervalEnd.getTime() + startJitterMs(dag, logicalDate));
  const window = windowFor(dag, due);
  return window && window.start > due ? window.start : due;
}

/** What, if anything, is wrong with a run's start window or deadline at `now`. */
export function slaProblem(dag: Dag, run: DagRunRow, now: Date, typicalMs: number | undefined): string | undefined {
  const fmt = (d: Date) => d.toISOString();
  const window = windowFor(dag, new Date(run.due_at));
  if (window) {
    if (!run.started_at && now > window.end) return `not started by the end of its start window (${fmt(window.end)})`;
    if (run.started_at && new Date(run.started_at) > window.end)
      return `started at ${fmt(new Date(run.started_at))}, after its start window closed (${fmt(window.end)})`;
  }
  const deadline = deadlineFor(dag, new Date(run.logical_date));
  if (!deadline) return undefined;
  const finished = run.ended_at ? new Date(run.ended_at) : undefined;
  if (finished) return finished > deadline ? `finished at ${fmt(finished)}, after its deadline (${fmt(deadline)})` : undefined;
  if (now > deadline) return `not finished by its deadline (${fmt(deadline)})`;
  if (typicalMs !== undefined) {
    const projected = new Date((run.started_at ? new Date(run.started_at).getTime() : Math.max(now.getTime(), new Date(run.due_at).getTime())) + typicalMs);
    if (projected > deadline)
      return `projected to finish at ${fmt(projected)} (typical run ${Math.round(typicalMs / 1000)} s), after its deadline (${fmt(deadline)})`;
  }
  return undefined;
}

/**
 * Raises an SLA alert for each scheduled run that misses (or is projected to miss) its start
 * window or deadline: once per run, whichever scheduler sees it first, through the escalation
 * path. Returns the runs alerted.
 */
export async function checkSla(engine: Engine, now = new Date()): Promise<number[]> {
  const alerted: number[] = [];
  for (const dag of engine.dags.dags.values()) {
    if (!dag.window && !dag.deadline) continue;
    const runs = await engine.db
      .selectFrom('dag_runs')
      .selectAll()
      .where('dag_id', '=', dag.id)
      .where('run_type', '=', 'scheduled')
      .where('sla_alerted_at', 'is', null)
      // Someone cancelled it on purpose: no SLA alert tells them what they did.
      .where('state', '!=', 'cancelled')
      .where((eb) => eb.or([eb('state', 'in', ['queued', 'running']), eb('ended_at', '>', new Date(now.getTime() - DAY))]))
      .execute();
    if (!runs.length) continue;
    const typical = dag.deadline ? await typicalDurationMs(engine, dag.id) : undefined;
    for (const run of runs) {
      const problem = slaProblem(dag, run, now, typical);
      if (!problem) continue;
      const claimed = await engine.db
        .updateTable('dag_runs')
        .set({ sla_alerted_at: sql`now()`, sla_reason: problem })
        .where('id', '=', run.id)
        .where('sla_alerted_at', 'is', null)
        .returning('id')
        .executeTakeFirst();
      if (!claimed) continue;
      alerted.push(run.id);
      await engine.escalate({
        kind: 'sla_miss',
        dagId: dag.id,
        runId: run.id,
        owner: dag.owner,
        message: `SLA: run for ${new Date(run.logical_date).toISOString()} ${problem}`,
      });
    }
  }
  return alerted;
}

/** Median duration of the DAG's last ten successful scheduled runs. */
async function typicalDurationMs(engine: Engine, dagId: string): Promise<number | undefined> {
  const rows = await engine.db
    .selectFrom('dag_runs')
    .select(sql<number>`extract(epoch from ended_at - started_at) * 1000`.as('ms'))
    .where('dag_id', '=', dagId)
    .where('state', '=', 'success')
    .where('run_type', '=', 'scheduled')
    .orderBy('ended_at', 'desc')
    .limit(10)
    .execute();
  if (!rows.length) return undefined;
  const sorted = rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
