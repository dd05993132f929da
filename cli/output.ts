import { parseCliDate } from './args.ts';
import type { Runtime, RuntimeOptions } from '../server/runtime.ts';
import { FINISHED_RUN_STATES, type DagRunRow } from '../server/store/schema.ts';

/** Opens the runtime for one command and always closes it, so embedded services stop with the command. */
export async function withRuntime<T>(fn: (rt: Runtime) => Promise<T>, options: Pick<RuntimeOptions, 'waitForServices'> = {}): Promise<T> {
  const { openRuntime } = await import('../server/runtime.ts');
  const rt = await openRuntime({ defaultLogLevel: 'warn', ...options });
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

/** Keeps a long-running process up until SIGINT/SIGTERM, then closes what it started, in order. */
export async function serveUntilSignal(rt: Runtime, closers: (() => Promise<void>)[]): Promise<void> {
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  rt.log.info('shutting down');
  for (const close of closers) await close();
  await rt.close();
}

/** Prints rows as an aligned table, or as JSON with --json. */
export function printRows(rows: Record<string, unknown>[], json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (!rows.length) {
    process.stdout.write('(none)\n');
    return;
  }
  const columns = Object.keys(rows[0]!);
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n')}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** A date given after the command line was parsed (options parse theirs with cli-args.ts). */
export function parseDate(value: string, flag: string): Date {
  try {
    return parseCliDate(value).at;
  } catch (err) {
    throw new Error(`${flag}: '${value}': ${(err as Error).message}`);
  }
}

export function parseConf(value: string | undefined): Record<string, unknown> {
  if (value === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err) {
    throw new Error(`--conf: not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('--conf: must be a JSON object');
  return parsed as Record<string, unknown>;
}

/**
 * Waits until every run has finished, or `signal` aborts (then returns the runs as they are).
 * On a terminal the progress line redraws in place; elsewhere (CI logs) a line is printed only
 * when the counts change.
 */
export async function watchRuns(rt: Runtime, runIds: number[], label: string, signal?: AbortSignal): Promise<DagRunRow[]> {
  const tty = process.stderr.isTTY;
  let last = '';
  let swept = Date.now();
  for (;;) {
    let polled: Awaited<ReturnType<typeof pollRuns>>;
    try {
      // This command may be the only process looking after its runs: like a scheduler, it runs
      // the recovery sweep, so a task whose success could not be recorded (PostgreSQL was away
      // when it finished) runs again rather than leaving the run waiting for ever.
      if (Date.now() - swept >= rt.config.HUBFLOW_SWEEP_INTERVAL_MS) {
        swept = Date.now();
        await rt.engine.sweep();
      }
      polled = await pollRuns(rt, runIds);
    } catch (err) {
      // PostgreSQL or Redis away: wait for them (the watch says so), then carry on watching.
      if (!rt.services.failed(err)) throw err;
      if (tty && last) process.stderr.write('\n');
      last = '';
      await rt.services.untilUp();
      continue;
    }
    const { runs, tis } = polled;
    const count = Object.fromEntries(tis.map((t) => [t.state, Number(t.n)]));
    const total = Object.values(count).reduce((a, b) => a + b, 0);
    const terminal = (count.success ?? 0) + (count.failed ?? 0) + (count.upstream_failed ?? 0) + (count.skipped ?? 0) + (count.cancelled ?? 0);
    const runsDone = runs.filter((r) => FINISHED_RUN_STATES.has(r.state)).length;
    const parts = [`${label}: runs ${runsDone}/${runs.length}`, `tasks ${terminal}/${total}`];
    for (const s of ['running', 'queued', 'deferred', 'up_for_retry', 'failed', 'upstream_failed', 'cancelled']) if (count[s]) parts.push(`${s} ${count[s]}`);
    const text = parts.join(', ');
    if (text !== last) {
      process.stderr.write(tty ? `\r\x1b[2K${text}` : `${text}\n`);
      last = text;
    }
    if (runsDone === runs.length || signal?.aborted) {
      if (tty) process.stderr.write('\n');
      return runs;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, tty ? 100 : 500);
      signal?.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
    });
  }
}

async function pollRuns(rt: Runtime, runIds: number[]) {
  const runs = await rt.db.selectFrom('dag_runs').selectAll().where('id', 'in', runIds).orderBy('logical_date').execute();
  const tis = await rt.db
    .selectFrom('task_instances')
    .select(['state', (eb) => eb.fn.countAll<string>().as('n')])
    .where('run_id', 'in', runIds)
    .groupBy('state')
    .execute();
  return { runs, tis };
}

export async function printRunSummary(rt: Runtime, run: DagRunRow): Promise<void> {
  const tis = await rt.db
    .selectFrom('task_instances')
    .select(['task_id', 'map_index', 'state', 'try_number', 'started_at', 'ended_at', 'error'])
    .where('run_id', '=', run.id)
    .orderBy('id')
    .execute();
  // Upstreams first, then map index, as the DAG reads.
  const rank = new Map([...(rt.dags.dags.get(run.dag_id)?.tasks.keys() ?? [])].map((id, i) => [id, i]));
  tis.sort((a, b) => (rank.get(a.task_id) ?? 0) - (rank.get(b.task_id) ?? 0) || a.map_index - b.map_index);
  const why = run.state === 'cancelled' && run.cancel_reason ? ` (${run.cancel_reason})` : '';
  process.stdout.write(`run ${run.id} of ${run.dag_id} at ${new Date(run.logical_date).toISOString()}: ${run.state}${why}\n`);
  printRows(
    tis.map((t) => ({
      task: t.map_index >= 0 ? `${t.task_id}[${t.map_index}]` : t.task_id,
      state: t.state,
      tries: t.try_number,
      started: t.started_at ? new Date(t.started_at).toISOString().slice(11, 23) : '',
      seconds: t.started_at && t.ended_at ? ((new Date(t.ended_at).getTime() - new Date(t.started_at).getTime()) / 1000).toFixed(3) : '',
      error: (t.error as { message?: string } | null)?.message ?? '',
    })),
    false,
  );
}
