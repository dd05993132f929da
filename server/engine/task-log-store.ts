import { sql } from 'kysely';
import { NotFoundError } from '../../core/errors.ts';
import type { Config } from '../../core/config.ts';
import type { Store } from '../store/db.ts';
import type { DagRunRow } from '../store/schema.ts';
import { durationMs } from './duration.ts';

/**
 * The store's side of task logs (task-logs.ts captures them): writing a batch of a try's lines,
 * reading one try's log back for the CLI, the API and the page, and the retention rule the
 * scheduler's housekeeping applies.
 */

export interface LogLine {
  seq: number;
  at: Date;
  level: string;
  line: string;
}

/** A batch in one statement, whatever its size: the columns travel as arrays and unnest into rows. */
export async function insertLogLines(db: Store, tiId: number, tryNumber: number, lines: readonly LogLine[]): Promise<void> {
  if (!lines.length) return;
  await sql`
    insert into task_logs (ti_id, try_number, seq, at, level, line)
    select ${tiId}, ${tryNumber}, l.seq, l.at, l.level, l.line
    from unnest(${lines.map((l) => l.seq)}::integer[], ${lines.map((l) => l.at.toISOString())}::timestamptz[],
                ${lines.map((l) => l.level)}::text[], ${lines.map((l) => l.line)}::text[]) as l(seq, at, level, line)
    on conflict do nothing`.execute(db);
}

/** The default of HUBFLOW_LOG_RETENTION. */
export const DEFAULT_LOG_RETENTION = '30d';

/** HUBFLOW_LOG_RETENTION in ms; a spelling that is not a duration is refused, naming the setting. */
export function logRetentionMs(config: Pick<Config, 'HUBFLOW_LOG_RETENTION'>): number {
  const ms = durationMs(config.HUBFLOW_LOG_RETENTION);
  if (typeof ms === 'string') throw new Error(`HUBFLOW_LOG_RETENTION: ${ms}`);
  if (ms < 60_000) throw new Error(`HUBFLOW_LOG_RETENTION: '${config.HUBFLOW_LOG_RETENTION}' keeps logs less than a minute; use at least '1m'`);
  return ms;
}

/** Rows one prune statement deletes: short transactions, so writers and other schedulers never wait long. */
const PRUNE_BATCH = 5_000;
/** Batches per housekeeping pass: a backlog (a retention shortened) is worked off over several sweeps. */
const PRUNE_BATCHES = 20;

/**
 * Deletes the lines written before `cutoff`, in bounded batches; returns how many. Rows another
 * scheduler is deleting are skipped, not waited for.
 */
export async function pruneTaskLogs(db: Store, cutoff: Date, batch = PRUNE_BATCH, batches = PRUNE_BATCHES): Promise<number> {
  let total = 0;
  for (let i = 0; i < batches; i++) {
    const { numAffectedRows } = await sql`
      delete from task_logs where (ti_id, try_number, seq) in (
        select ti_id, try_number, seq from task_logs where at < ${cutoff.toISOString()}::timestamptz limit ${batch} for update skip locked)`.execute(db);
    const deleted = Number(numAffectedRows ?? 0);
    total += deleted;
    if (deleted < batch) break;
  }
  return total;
}

export interface TryInfo {
  try_number: number;
  outcome: string;
  started_at: Date;
  ended_at: Date | null;
  lines: number;
}

export interface TaskLog {
  run: Pick<DagRunRow, 'id' | 'dag_id' | 'state' | 'logical_date'>;
  instance: { id: number; task_id: string; map_index: number; map_item: unknown; state: string; try_number: number; max_tries: number };
  /** Every try the instance started, oldest first. */
  tries: TryInfo[];
  /** The try shown: the one asked for, else the latest; null before the first try starts. */
  try: number | null;
  lines: LogLine[];
  /** The task's instances when it is mapped (so a reader can pick another), else empty. */
  mapped: { map_index: number; map_item: unknown; state: string }[];
}

export interface TaskLogQuery {
  try?: number;
  /** Which instance of a mapped task; required when it has more than one, unless `firstInstance`. */
  map?: number;
  /** A mapped task without `map`: its first instance rather than an error (the page, which lists the others). */
  firstInstance?: boolean;
}

/** One try's log of a task of a run; NotFoundError naming what is missing (run, task, instance or try). */
export async function readTaskLog(db: Store, runId: number, taskId: string, query: TaskLogQuery = {}): Promise<TaskLog> {
  const run = await db.selectFrom('dag_runs').select(['id', 'dag_id', 'state', 'logical_date']).where('id', '=', runId).executeTakeFirst();
  if (!run) throw new NotFoundError(`no run ${runId}`);
  const instances = await db
    .selectFrom('task_instances')
    .select(['id', 'task_id', 'map_index', 'map_item', 'state', 'try_number', 'max_tries'])
    .where('run_id', '=', runId)
    .where('task_id', '=', taskId)
    .orderBy('map_index')
    .execute();
  if (!instances.length) throw new NotFoundError(`run ${runId} (DAG '${run.dag_id}') has no task '${taskId}'`);
  const mapped = instances.some((i) => i.map_index >= 0) ? instances.map(({ map_index, map_item, state }) => ({ map_index, map_item, state })) : [];
  let instance = instances[0]!;
  if (query.map !== undefined) {
    const found = instances.find((i) => i.map_index === query.map);
    if (!found) {
      const have = mapped.length ? `its instances are 0 to ${instances.at(-1)!.map_index}` : 'it is not mapped';
      throw new NotFoundError(`task '${taskId}' of run ${runId} has no map index ${query.map}: ${have}`);
    }
    instance = found;
  } else if (instances.length > 1 && !query.firstInstance) {
    throw new NotFoundError(
      `task '${taskId}' of run ${runId} is mapped over ${instances.length} items: name one with map index 0 to ${instances.at(-1)!.map_index}`,
    );
  }
  const attempts = await db
    .selectFrom('attempts')
    .select(['try_number', 'outcome', 'started_at', 'ended_at'])
    .where('ti_id', '=', instance.id)
    .orderBy('try_number')
    .execute();
  const counts = await db
    .selectFrom('task_logs')
    .select(['try_number', (eb) => eb.fn.countAll<number>().as('lines')])
    .where('ti_id', '=', instance.id)
    .groupBy('try_number')
    .execute();
  const lineCount = new Map(counts.map((c) => [c.try_number, Number(c.lines)]));
  const tries = attempts.map((a) => ({ ...a, lines: lineCount.get(a.try_number) ?? 0 }));
  const what = `task '${taskId}'${instance.map_index >= 0 ? ` [${instance.map_index}]` : ''} of run ${runId}`;
  if (query.try !== undefined && !tries.some((t) => t.try_number === query.try)) {
    const have = tries.length ? `its tries are ${tries[0]!.try_number} to ${tries.at(-1)!.try_number}` : 'it has not started yet';
    throw new NotFoundError(`${what} has no try ${query.try}: ${have}`);
  }
  const shown = query.try ?? tries.at(-1)?.try_number ?? null;
  const lines =
    shown === null
      ? []
      : await db
          .selectFrom('task_logs')
          .select(['seq', 'at', 'level', 'line'])
          .where('ti_id', '=', instance.id)
          .where('try_number', '=', shown)
          .orderBy('seq')
          .execute();
  return { run, instance, tries, try: shown, lines, mapped };
}
