import { userInfo } from 'node:os';
import { type Command, Option } from 'commander';
import { runIdArgument, wholeNumber } from './args.ts';
import { printJson, printRows, withRuntime } from './output.ts';
import type { Actor } from '../server/engine/actions.ts';

/*
 * The operator's actions on the command line: each command is one call of the functions the
 * API and the page buttons use too (server/engine/actions.ts).
 */

const actions = () => import('../server/engine/actions.ts');
const json = new Option('--json', 'print JSON');
const stateOption = () => new Option('--state <state>', 'how it ended').choices(['success', 'failed']).makeOptionMandatory();
type MarkState = 'success' | 'failed';

/** Who acts from this terminal, as the log records it. */
export function cliActor(reason?: string): Actor {
  let user = 'unknown user';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for this uid (a container's arbitrary user): the log still says it was the CLI.
  }
  return { by: `cli (${user})`, reason };
}

/** `hubflow tasks clear` and `hubflow tasks mark`. */
export function registerTaskActions(tasks: Command): void {
  tasks
    .command('clear')
    .addArgument(runIdArgument())
    .description('reset failed tasks (or --task ones) and everything downstream, so the run resumes from there')
    .option('--task <task...>', 'tasks to clear (default: the failed ones)')
    .option('--no-downstream', 'only the tasks themselves, not what is downstream of them')
    .option('--failed-only', 'of those, only the tasks with a failed, upstream_failed or cancelled instance')
    .option('--reason <text>', 'recorded in the log')
    .addOption(json)
    .action((id: number, opts: { task?: string[]; downstream: boolean; failedOnly?: boolean; reason?: string; json?: boolean }) =>
      withRuntime(async (rt) => {
        const options = { tasks: opts.task, downstream: opts.downstream, failedOnly: opts.failedOnly };
        const { cleared } = await (await actions()).clear(rt.engine, id, options, cliActor(opts.reason));
        if (opts.json) return printJson({ run: id, cleared });
        process.stdout.write(cleared.length ? `run ${id}: cleared ${cleared.join(', ')}; workers will pick them up\n` : `run ${id}: nothing to clear\n`);
      }),
    );

  tasks
    .command('mark <run> <task>')
    .description('mark a task (or one map index of it) success or failed; downstream tasks are decided again by their trigger rules')
    .addOption(stateOption())
    .option('--map <index>', 'only this map index of a mapped task', wholeNumber(0))
    .option('--reason <text>', 'recorded in the log (and, marked failed, on the task)')
    .addOption(json)
    .action((run: string, task: string, opts: { state: MarkState; map?: number; reason?: string; json?: boolean }) =>
      withRuntime(async (rt) => {
        const id = parseRunId(run);
        const marked = await (await actions()).markTask(rt.engine, id, task, { state: opts.state, mapIndex: opts.map, actor: cliActor(opts.reason) });
        if (opts.json) return printJson(marked);
        const what = `${task}${opts.map === undefined ? '' : `[${opts.map}]`}`;
        process.stdout.write(
          marked.marked.length
            ? `run ${id}: ${what} marked ${opts.state}${marked.reset.length ? `; ${marked.reset.join(', ')} decided again` : ''}; run is ${marked.runState}\n`
            : `run ${id}: ${what} was already ${opts.state}\n`,
        );
      }),
    );
}

/** `hubflow runs mark`. */
export function registerRunActions(runs: Command): void {
  runs
    .command('mark')
    .addArgument(runIdArgument())
    .description('end a run as success (its unfinished and failed tasks success) or failed (its tasks not yet run skipped)')
    .addOption(stateOption())
    .option('--reason <text>', 'recorded in the log')
    .addOption(json)
    .action((id: number, opts: { state: MarkState; reason?: string; json?: boolean }) =>
      withRuntime(async (rt) => {
        const marked = await (await actions()).markRun(rt.engine, id, { state: opts.state, actor: cliActor(opts.reason) });
        if (opts.json) return printJson(marked);
        process.stdout.write(`run ${id} of ${marked.dag} marked ${opts.state} (${marked.instances} task instance(s) changed)\n`);
      }),
    );
}

/** `hubflow dead-letters list|replay`. */
export function registerDeadLetterCommands(program: Command): void {
  const letters = program.command('dead-letters').description('task instances that failed their last try, and replaying them');

  letters
    .command('list')
    .description('open dead letters, newest first')
    .option('--dag <dag>', 'only this DAG')
    .option('--task <task>', 'only this task')
    .addOption(new Option('--status <status>', 'open, resolved or all').choices(['open', 'resolved', 'all']).default('open'))
    .option('--limit <n>', 'how many, 1 to 1000', wholeNumber(1, 1000), 100)
    .addOption(json)
    .action((opts: { dag?: string; task?: string; status: 'open' | 'resolved' | 'all'; limit: number; json?: boolean }) =>
      withRuntime(async (rt) => {
        const rows = await (await actions()).listDeadLetters(rt.db, { dagId: opts.dag, taskId: opts.task, status: opts.status, limit: opts.limit });
        if (opts.json) return printJson(rows);
        if (!rows.length) return void process.stdout.write(`no ${opts.status === 'all' ? '' : `${opts.status} `}dead letters\n`);
        printRows(
          rows.map((l) => ({
            id: l.id,
            dag: l.dag_id,
            run: l.run_id,
            task: l.map_index >= 0 ? `${l.task_id}[${l.map_index}]` : l.task_id,
            item: l.map_item === null || l.map_item === undefined ? '' : JSON.stringify(l.map_item),
            tries: l.tries,
            error: (l.error as { message?: string } | null)?.message ?? '',
            created_at: l.created_at,
            ...(opts.status === 'open' ? {} : { resolution: l.resolution, resolved_by: l.resolved_by }),
          })),
          false,
        );
      }),
    );

  letters
    .command('replay [ids...]')
    .description('replay dead letters (by id, or every open one of --dag [--task]): their tasks and downstream run again with fresh tries')
    .option('--dag <dag>', 'every open dead letter of this DAG')
    .option('--task <task>', 'with --dag: only those of this task')
    .option('--reason <text>', 'recorded in the log')
    .addOption(json)
    .action((ids: string[], opts: { dag?: string; task?: string; reason?: string; json?: boolean }) =>
      withRuntime(async (rt) => {
        if (ids.length && opts.dag) throw new Error('dead-letters replay: name letters by id, or a DAG (--dag), not both');
        if (!ids.length && !opts.dag) throw new Error('dead-letters replay: name the letters (hubflow dead-letters replay 12 13) or a DAG (--dag D)');
        if (opts.task && !opts.dag) throw new Error('dead-letters replay: --task needs --dag');
        const selection = ids.length ? { ids: ids.map(parseLetterId) } : { dagId: opts.dag, taskId: opts.task };
        const result = await (await actions()).replayDeadLetters(rt.engine, selection, cliActor(opts.reason));
        if (opts.json) return printJson(result);
        process.stdout.write(`replayed ${result.replayed.length} dead letter(s)${result.replayed.length ? `: ${result.replayed.join(', ')}` : ''}\n`);
        for (const r of result.runs) process.stdout.write(`run ${r.run}: cleared ${r.cleared.join(', ')}\n`);
        for (const r of result.refused) process.stderr.write(`run ${r.run}: not replayed (letters ${r.letters.join(', ')}): ${r.reason}\n`);
        if (result.refused.length) process.exitCode = 1;
      }),
    );
}

function parseRunId(raw: string): number {
  if (!/^\d{1,15}$/.test(raw) || Number(raw) <= 0) throw new Error(`not a run id: '${raw}' (a positive integer)`);
  return Number(raw);
}

function parseLetterId(raw: string): number {
  if (!/^\d{1,15}$/.test(raw) || Number(raw) <= 0) throw new Error(`not a dead letter id: '${raw}' (a positive integer)`);
  return Number(raw);
}
