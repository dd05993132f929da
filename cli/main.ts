import { Command, Option } from 'commander';
import { packageVersion, runIdArgument, usageErrorsExit2, wholeNumber } from './args.ts';
import { Console } from 'node:console';
import { maskSecrets } from '../core/redact.ts';
import { printJson, printRows, printRunSummary, serveUntilSignal, withRuntime } from './output.ts';
import { registerDeadLetterCommands, registerRunActions, registerTaskActions, cliActor } from './actions.ts';
import { registerCdcCommands } from './cdc.ts';
import { registerDagCommands } from './dags.ts';
import { registerDbCommands } from './db.ts';
import { registerFilingsCommands } from './filings.ts';
import { registerHealthCommand } from './health.ts';
import { registerHistoryCommands } from './history.ts';
import { registerHubCommands } from './hub.ts';
import { registerIntegrationsCommand } from './integrations.ts';
import { registerTaskLogsCommand } from './tasks-logs.ts';
import { registerWarehouseCommands } from './warehouse.ts';
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

registerDagCommands(program);

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
      const { cancel } = await import('../server/engine/actions.ts');
      const cancelled = await cancel(rt.engine, { runIds, dagId: opts.dag, state: opts.state, runType: opts.type }, cliActor(opts.reason));
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

registerTaskActions(program.command('tasks').description('task instances'));
registerTaskLogsCommand(program);
registerRunActions(runs);
registerDeadLetterCommands(program);
registerWindowCommands(program);
registerHubCommands(program);
registerHistoryCommands(program);
registerWarehouseCommands(program);
registerFilingsCommands(program);
registerDbCommands(program);
registerHealthCommand(program);
registerCdcCommands(program);
registerIntegrationsCommand(program);

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
  // A driver's message may quote the URL it was given, password and all.
  process.stderr.write(`hubflow: ${maskSecrets(err instanceof Error ? err.message : String(err))}\n`);
  process.exitCode = process.exitCode || 2;
});
