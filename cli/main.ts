import { Command, Option } from 'commander';
import { backfillRange, dateOption, packageVersion, parseCliDate, runIdArgument, usageErrorsExit2, wholeNumber, type CliDate } from './args.ts';
import { Console } from 'node:console';
import path from 'node:path';
import { parseConf, printJson, printRows, printRunSummary, serveUntilSignal, watchRuns, withRuntime } from './output.ts';
import { registerFilingsCommands } from './filings.ts';
import { registerHistoryCommands } from './history.ts';
import { registerHubCommands } from './hub.ts';
import { registerWindowCommands } from './windows.ts';
import type { Runtime } from '../server/runtime.ts';
import { RUN_STATES, RUN_TYPES, type RunType } from '../server/store/schema.ts';

// Each command loads what it drives when it runs (services, engine, HTTP stack), so `--help`
// and the commands that need little start at once.
const openRuntime = async (...args: Parameters<typeof import('../server/runtime.ts').openRuntime>) =>
  (await import('../server/runtime.ts')).openRuntime(...args);
const processes = () => import('../server/processes.ts');
const startServer: typeof import('../server/http/server.ts').startServer = async (...args) => (await import('../server/http/server.ts')).startServer(...args);

// stdout carries only a command's output (a table, one JSON document): what task code run in
// this process writes with console.log is a log line, so it goes to stderr with the logs.
globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });

// `hubflow ... | head` closes stdout early: that ends the output, it is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const program = usageErrorsExit2(
  new Command('hubflow')
    .description('Airflow-style DAG runner for master-data ETL on BullMQ')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError(),
);

/** Runs the start of a process; if it fails, what was opened is closed, so the process exits with the error. */
async function closedOnFailure<T>(rt: Runtime, start: () => Promise<T>, closers: (() => Promise<void>)[] = []): Promise<T> {
  try {
    return await start();
  } catch (err) {
    for (const close of closers) await close();
    await rt.close();
    throw err;
  }
}

const json = new Option('--json', 'print JSON');
/** For the commands that watch runs and the long-running ones: a service that is down is waited for. */
const WAIT = { waitForServices: true } as const;

const dags = program.command('dags').description('DAG definitions and their runs');

dags
  .command('list')
  .description('list loaded DAGs, and the files that failed to load (exit 1 if any)')
  .addOption(json)
  .action(async (opts: { json?: boolean }) => {
    // The DAG folder and the pause flags only, so listing starts at once and opens no queue.
    const config = (await import('../core/config.ts')).loadConfig();
    const { BUNDLED_DAGS_DIR, loadDagFolder } = await import('../server/engine/dag-imports.ts');
    const registry = await loadDagFolder(path.resolve(config.HUBFLOW_DAGS_DIR ?? BUNDLED_DAGS_DIR));
    const paused = await (await import('./paused.ts')).pausedDags(config);
    const rows = [...registry.dags.values()].map((d) => ({
      dag: d.id,
      schedule: d.schedule ? `${d.schedule.cron} (${d.schedule.timezone})` : null,
      paused: paused.get(d.id) ?? false,
      tasks: d.tasks.size,
      owner: d.owner ?? null,
      file: d.file ?? null,
    }));
    const errors = registry.errors.map((e) => ({ file: e.file, dag: e.dagId ?? null, field: e.field, error: e.problem }));
    if (opts.json) printJson({ dags: rows, errors });
    else printRows(rows, false);
    for (const e of registry.errors) process.stderr.write(`error: ${e.message}\n`);
    if (errors.length) process.exitCode = 1;
  });

dags
  .command('show <dag>')
  .description("a DAG's tasks, dependencies and next scheduled intervals")
  .addOption(json)
  .action((dagId: string, opts: { json?: boolean }) =>
    withRuntime(async (rt) => {
      const dag = rt.engine.dag(dagId);
      const next: string[] = [];
      for (let t = dag.timetable?.next(new Date()); t && next.length < 5; t = dag.timetable!.next(t)) next.push(t.toISOString());
      const tasks = [...dag.tasks.values()].map((t) => ({
        task: t.id,
        after: t.upstream.join(', '),
        trigger: t.trigger,
        map: t.map ?? null,
        tries: t.retry.attempts,
        timeoutMs: t.timeoutMs ?? null,
      }));
      const info = {
        dag: dag.id,
        description: dag.description,
        owner: dag.owner ?? null,
        file: dag.file,
        schedule: dag.schedule ?? null,
        catchup: dag.catchup,
        maxActiveRuns: dag.maxActiveRuns,
        nextTicks: next,
        tasks,
      };
      if (opts.json) return printJson(info);
      process.stdout.write(`${dag.id}${dag.description ? ` — ${dag.description}` : ''}\n`);
      process.stdout.write(
        `file: ${dag.file ?? '(inline)'}\nschedule: ${dag.schedule ? `${dag.schedule.cron} in ${dag.schedule.timezone}` : 'none (manual)'}; catchup ${dag.catchup}; max active runs ${dag.maxActiveRuns}\n`,
      );
      if (next.length) process.stdout.write(`next ticks: ${next.join(', ')}\n`);
      printRows(tasks, false);
    }),
  );

dags
  .command('trigger <dag>')
  .description('create a manual run (the running scheduler and workers execute it)')
  .option('--date <date>', 'logical date (default: now)', dateOption)
  .option('--conf <json>', 'JSON object handed to every task as ctx.conf')
  .addOption(json)
  .action((dagId: string, opts: { date?: Date; conf?: string; json?: boolean }) =>
    withRuntime(async (rt) => {
      const run = await rt.engine.triggerRun(dagId, {
        logicalDate: opts.date,
        conf: parseConf(opts.conf),
      });
      if (opts.json) printJson(run);
      else process.stdout.write(`created run ${run.id} of ${dagId} at ${new Date(run.logical_date).toISOString()} (${run.state})\n`);
    }),
  );

dags
  .command('test <dag>')
  .description('run one run to completion in this process, on a queue only it takes from; exit 1 if it failed')
  .option('--date <date>', 'logical date (default: now)', dateOption)
  .option('--conf <json>', 'JSON object handed to every task as ctx.conf')
  .addOption(json)
  .action((dagId: string, opts: { date?: Date; conf?: string; json?: boolean }) =>
    withRuntime(async (rt) => {
      const { run: created, queue } = await rt.engine.testRun(dagId, opts.date ?? new Date(), parseConf(opts.conf));
      // Its own worker on its own queue: no other worker runs this run's tasks, and this
      // process runs no other run's. It sweeps its run itself, as other schedulers leave it be.
      const interrupt = onInterrupt();
      const worker = (await processes()).startWorker(rt, { queue });
      const sweeper = setInterval(() => void rt.engine.sweep([created.id]).catch(() => undefined), rt.config.HUBFLOW_SWEEP_INTERVAL_MS);
      try {
        const [run] = await watchRuns(rt, [created.id], `test ${dagId}`, interrupt.signal);
        if (interrupt.signal.aborted) {
          clearInterval(sweeper);
          await worker.close({ abandon: true });
          await reportInterrupted(rt, [created.id], `hubflow runs cancel ${created.id}`, 'only this command runs a test run, so nothing else will');
          return;
        }
        if (opts.json) printJson(run);
        else await printRunSummary(rt, run!);
        if (run!.state !== 'success') process.exitCode = 1;
      } finally {
        clearInterval(sweeper);
        interrupt.done();
        await worker.close();
        await rt.engine.dispatcher
          .queueOf(created.id)
          .obliterate({ force: true })
          .catch(() => undefined);
      }
    }, WAIT),
  );

dags
  .command('backfill <dag>')
  .description('run every interval with a logical date in [--from, --to], oldest first; exit 1 if any failed')
  .requiredOption('--from <date>', 'first logical date (inclusive; a date alone: from the start of that day)', parseCliDate)
  .requiredOption('--to <date>', 'last logical date (inclusive; a date alone: to the end of that day, so its tick is included)', parseCliDate)
  .addOption(json)
  .addHelpText(
    'after',
    "\nA date without a time (2026-03-04) is that whole day in the DAG's time zone; with a time\n(2026-03-04T06:00:00Z) it is that instant. Both ends are inclusive.",
  )
  .action((dagId: string, opts: { from: CliDate; to: CliDate; json?: boolean }) =>
    withRuntime(async (rt) => {
      const worker = (await processes()).startWorker(rt);
      const interrupt = onInterrupt();
      // Each finished run starts the next queued one (maxActiveRuns); this also covers a run
      // that became free while none finished here. Only this DAG: a backfill schedules nothing else.
      const activator = setInterval(() => void rt.engine.activate(dagId).catch(() => undefined), 500);
      try {
        const range = backfillRange(opts.from, opts.to, rt.engine.dag(dagId).schedule?.timezone);
        const created = await rt.engine.backfill(dagId, range.from, range.to);
        if (!created.length) {
          process.stderr.write('nothing to backfill: every interval in the range already has a run\n');
          if (opts.json) printJson([]);
          return;
        }
        const ids = created.map((r) => r.id);
        const runs = await watchRuns(rt, ids, `backfill ${dagId}`, interrupt.signal);
        if (interrupt.signal.aborted) {
          clearInterval(activator);
          await worker.close({ abandon: true });
          await reportInterrupted(
            rt,
            ids,
            `hubflow runs cancel --dag ${dagId} --type backfill`,
            'a running scheduler and its workers go on with them (a task this command was running is tried again once its heartbeat lapses)',
          );
          return;
        }
        const rows = runs.map((r) => ({ run: r.id, logical_date: r.logical_date, state: r.state }));
        printRows(rows, Boolean(opts.json));
        if (runs.some((r) => r.state !== 'success')) process.exitCode = 1;
      } finally {
        clearInterval(activator);
        interrupt.done();
        await worker.close();
      }
    }, WAIT),
  );

/**
 * Until `done`, Ctrl-C (or SIGTERM) aborts the signal instead of ending the process at once,
 * so a watching command can say what it leaves behind; a second Ctrl-C ends it.
 */
function onInterrupt(): { signal: AbortSignal; done(): void } {
  const controller = new AbortController();
  const handler = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    done() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** After Ctrl-C: which of the runs are left unfinished, and the command that cancels them; exit 130. */
async function reportInterrupted(rt: Runtime, runIds: number[], cancel: string, whoGoesOn: string): Promise<void> {
  process.exitCode = 130;
  const left = await rt.db
    .selectFrom('dag_runs')
    .select(['id', 'state', 'logical_date'])
    .where('id', 'in', runIds)
    .where('state', 'in', ['queued', 'running'])
    .orderBy('logical_date')
    .execute();
  if (!left.length) {
    process.stderr.write('interrupted: every run had already finished\n');
    return;
  }
  const count = (state: string) => left.filter((r) => r.state === state).length;
  const dates = (r: (typeof left)[number]) => new Date(r.logical_date).toISOString();
  const span = left.length === 1 ? `run ${left[0]!.id} at ${dates(left[0]!)}` : `logical dates ${dates(left[0]!)} to ${dates(left.at(-1)!)}`;
  process.stderr.write(
    `interrupted: left ${count('queued')} queued and ${count('running')} running (${span}); ${whoGoesOn}.\n` +
      `To cancel ${left.length === 1 ? 'it' : 'them'}: ${cancel}\n`,
  );
}

for (const [name, paused] of [
  ['pause', true],
  ['unpause', false],
] as const) {
  dags
    .command(`${name} <dag>`)
    .description(paused ? 'stop creating scheduled runs (runs already started go on)' : 'resume scheduling')
    .action((dagId: string) =>
      withRuntime(async (rt) => {
        rt.engine.dag(dagId);
        const { sql } = await import('kysely');
        await rt.db.updateTable('dags').set({ is_paused: paused, updated_at: sql`now()` }).where('dag_id', '=', dagId).execute();
        process.stdout.write(`${dagId}: ${paused ? 'paused' : 'unpaused'}\n`);
      }),
    );
}

const runs = program.command('runs').description('DAG runs');

runs
  .command('list')
  .description('latest runs, newest first')
  .option('--dag <dag>', 'only this DAG')
  .addOption(new Option('--state <state>', 'only runs in this state').choices(RUN_STATES))
  .option('--limit <n>', 'how many, 1 to 1000', wholeNumber(1, 1000), 20)
  .addOption(json)
  .action((opts: { dag?: string; state?: (typeof RUN_STATES)[number]; limit: number; json?: boolean }) =>
    withRuntime(async (rt) => {
      let query = rt.db
        .selectFrom('dag_runs')
        .select(['id', 'dag_id', 'logical_date', 'run_type', 'state', 'started_at', 'ended_at'])
        .orderBy('id', 'desc')
        .limit(opts.limit);
      if (opts.dag) query = query.where('dag_id', '=', opts.dag);
      if (opts.state) query = query.where('state', '=', opts.state);
      printRows(await query.execute(), Boolean(opts.json));
    }),
  );

runs
  .command('show')
  .addArgument(runIdArgument())
  .description('a run and its task instances')
  .addOption(json)
  .action((id: number, opts: { json?: boolean }) =>
    withRuntime(async (rt) => {
      const run = await rt.db.selectFrom('dag_runs').selectAll().where('id', '=', id).executeTakeFirst();
      if (!run) throw new Error(`no run ${id}`);
      if (!opts.json) return printRunSummary(rt, run);
      const tasks = await rt.db.selectFrom('task_instances').selectAll().where('run_id', '=', run.id).orderBy('id').execute();
      printJson({ ...run, tasks });
    }),
  );

runs
  .command('cancel [run...]')
  .description("cancel runs: by id, or every queued and running run of --dag; unfinished tasks end 'cancelled', running ones are aborted")
  .option('--dag <dag>', 'every unfinished run of this DAG')
  .addOption(new Option('--state <state>', 'only runs in this state').choices(['queued', 'running']))
  .addOption(new Option('--type <type>', 'only runs of this type').choices(RUN_TYPES))
  .option('--reason <text>', 'recorded on the run and its tasks', 'cancelled from the command line')
  .addOption(json)
  .action((ids: string[], opts: { dag?: string; state?: 'queued' | 'running'; type?: RunType; reason: string; json?: boolean }) =>
    withRuntime(async (rt) => {
      if (!ids.length && !opts.dag) throw new Error('runs cancel: name the runs (hubflow runs cancel 12 13) or a DAG (--dag D)');
      const runIds = ids.length ? ids.map((id) => parseRunIdArg(id)) : undefined;
      if (opts.dag) rt.engine.dag(opts.dag);
      const cancelled = await rt.engine.cancelRuns({ runIds, dagId: opts.dag, state: opts.state, runType: opts.type, reason: opts.reason });
      const rows = cancelled.map((r) => ({
        run: r.id,
        dag: r.dagId,
        logical_date: r.logicalDate,
        type: r.runType,
        was: r.was,
        tasks_cancelled: r.tasks,
        tasks_aborted: r.interrupted,
      }));
      if (opts.json) return printJson(rows);
      if (!rows.length) process.stdout.write(`no ${opts.state ?? 'queued or running'} runs to cancel\n`);
      else printRows(rows, false);
    }),
  );

function parseRunIdArg(raw: string): number {
  if (!/^\d{1,15}$/.test(raw) || Number(raw) <= 0) throw new Error(`not a run id: '${raw}' (a positive integer)`);
  return Number(raw);
}

program
  .command('tasks')
  .description('task instances')
  .command('clear')
  .addArgument(runIdArgument())
  .description('reset failed tasks (or --task ones) and everything downstream, so the run resumes from there')
  .option('--task <task...>', 'tasks to clear (default: the failed ones)')
  .addOption(json)
  .action((id: number, opts: { task?: string[]; json?: boolean }) =>
    withRuntime(async (rt) => {
      const { cleared } = await rt.engine.clear(id, { tasks: opts.task });
      if (opts.json) return printJson({ run: id, cleared });
      process.stdout.write(cleared.length ? `run ${id}: cleared ${cleared.join(', ')}; workers will pick them up\n` : `run ${id}: nothing to clear\n`);
    }),
  );

registerWindowCommands(program);
registerHubCommands(program);
registerHistoryCommands(program);
registerFilingsCommands(program);

/** The configuration, refused before anything starts if serving it would expose the API unprotected. */
async function servableConfig(): Promise<import('../core/config.ts').Config> {
  const config = (await import('../core/config.ts')).loadConfig();
  (await import('../server/http/auth.ts')).checkServable(config);
  return config;
}

program
  .command('scheduler')
  .description('create due runs, start queued ones, re-enqueue lost tasks')
  .action(async () => {
    const rt = await openRuntime(WAIT);
    const scheduler = (await processes()).startScheduler(rt);
    rt.log.info({ dags: rt.dags.dags.size }, 'scheduler running');
    await serveUntilSignal(rt, [() => scheduler.stop()]);
  });

program
  .command('worker')
  .description('run tasks from the queues')
  .option('--concurrency <n>', 'tasks at once, 1 to 1000 (default HUBFLOW_WORKER_CONCURRENCY)', wholeNumber(1, 1000))
  .action(async (opts: { concurrency?: number }) => {
    const rt = await openRuntime(WAIT);
    const worker = (await processes()).startWorker(rt, { concurrency: opts.concurrency });
    rt.log.info({ concurrency: worker.worker.concurrency }, 'worker running');
    await serveUntilSignal(rt, [() => worker.close()]);
  });

program
  .command('server')
  .description('REST API, run pages, bull-board and /metrics')
  .action(async () => {
    const config = await servableConfig();
    const rt = await openRuntime({ config, ...WAIT });
    const server = await closedOnFailure(rt, () => startServer(rt));
    process.stdout.write(`hubflow server at ${server.url}\n`);
    await serveUntilSignal(rt, [() => server.close()]);
  });

program
  .command('dev')
  .description('scheduler, worker and server in one process')
  .action(async () => {
    const config = await servableConfig();
    const rt = await openRuntime({ config, ...WAIT });
    const { startScheduler, startWorker } = await processes();
    const worker = startWorker(rt);
    const scheduler = startScheduler(rt);
    const server = await closedOnFailure(rt, () => startServer(rt), [() => scheduler.stop(), () => worker.close()]);
    process.stdout.write(`hubflow dev: ${rt.dags.dags.size} DAGs; runs at ${server.url}/ ; queues at ${server.url}/admin/queues ; Ctrl-C stops\n`);
    await serveUntilSignal(rt, [() => server.close(), () => scheduler.stop(), () => worker.close()]);
  });

program
  .command('demo')
  .description('run the example DAGs on embedded defaults and show where to look')
  .option('--dag <dag>', 'DAG to run first', 'example-etl')
  .option('--keep', 'keep serving after the runs (default on a terminal)')
  .action(async (opts: { dag: string; keep?: boolean }) => (await import('./demo.ts')).runDemo(opts));

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`hubflow: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = process.exitCode || 2;
});
