import path from 'node:path';
import { type Command, Option } from 'commander';
import { backfillRange, dateOption, parseCliDate, type CliDate } from './args.ts';
import { cliActor } from './actions.ts';
import { parseConf, printJson, printRows, printRunSummary, watchRuns, withRuntime } from './output.ts';
import type { Runtime } from '../server/runtime.ts';

const processes = () => import('../server/processes.ts');
const json = new Option('--json', 'print JSON');
/** For the commands that watch runs: a service that is down is waited for. */
const WAIT = { waitForServices: true } as const;

/** `hubflow dags ...`: the DAG definitions and their runs. */
export function registerDagCommands(program: Command): void {
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
        const { trigger } = await import('../server/engine/actions.ts');
        const run = await trigger(rt.engine, dagId, { logicalDate: opts.date, conf: parseConf(opts.conf) }, cliActor());
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

  for (const [name, paused] of [
    ['pause', true],
    ['unpause', false],
  ] as const) {
    dags
      .command(`${name} <dag>`)
      .description(paused ? 'stop creating scheduled runs (runs already started go on)' : 'resume scheduling')
      .option('--reason <text>', 'recorded in the log')
      .action((dagId: string, opts: { reason?: string }) =>
        withRuntime(async (rt) => {
          const { setPaused } = await import('../server/engine/actions.ts');
          const result = await setPaused(rt.engine, dagId, paused, cliActor(opts.reason));
          process.stdout.write(`${dagId}: ${paused ? 'paused' : 'unpaused'}${result.changed ? '' : ' already'}\n`);
        }),
      );
  }
}

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
