import { Option, type Command } from 'commander';
import { runIdArgument, wholeNumber } from './args.ts';
import { printJson, withRuntime } from './output.ts';
import type { TaskLog } from '../server/engine/task-log-store.ts';
import { itemLabel } from '../server/http/dag-queries.ts';

/** The item a mapped instance ran for, as the pages name it (the tenant, not only its index). */
const itemOf = (log: TaskLog) => itemLabel(log.instance.map_item, log.instance.map_index);

/** A try's log as plain lines: time, level, text; an entry of several lines (a stack) keeps its own. */
function printLines(log: TaskLog): void {
  const out = log.lines.map((l) => `${l.at.toISOString()} ${l.level.padEnd(6)} ${l.line}\n`).join('');
  process.stdout.write(out);
}

/** Which try and instance is shown, and the others there are: on stderr, so stdout is the log alone (for grep, less). */
function describeShown(log: TaskLog, runId: number): string {
  const { instance } = log;
  const what = `run ${runId} (${log.run.dag_id}), task ${instance.task_id}${instance.map_index >= 0 ? ` [${instance.map_index}] ${itemOf(log)}` : ''}`;
  if (log.try === null) return `${what}: not started yet, no log\n`;
  const tries = log.tries.map((t) => `${t.try_number} ${t.outcome}`).join(', ');
  const empty = log.lines.length ? '' : '; it logged and printed nothing';
  return `${what}, try ${log.try} (tries: ${tries})${empty}\n`;
}

/** `hubflow tasks logs <run> <task> [--try N] [--map I] [--json]`, under the `tasks` group main.ts declares. */
export function registerTaskLogsCommand(program: Command): void {
  const tasks = program.commands.find((c) => c.name() === 'tasks') ?? program.command('tasks').description('task instances');
  tasks
    .command('logs')
    .addArgument(runIdArgument())
    .argument('<task>', 'task id')
    .description('what a task logged (ctx.log) and printed, one try at a time; default the latest try')
    .option('--try <n>', 'this try (1 is the first)', wholeNumber(1))
    .option('--map <index>', 'the instance of a mapped task, by map index', wholeNumber(0))
    .addOption(new Option('--json', 'print JSON'))
    .action((runId: number, taskId: string, opts: { try?: number; map?: number; json?: boolean }) =>
      withRuntime(async (rt) => {
        // Loaded when run, so `hubflow --help` stays free of the store's packages.
        const { readTaskLog } = await import('../server/engine/task-log-store.ts');
        const log = await readTaskLog(rt.db, runId, taskId, { try: opts.try, map: opts.map });
        if (opts.json) {
          const { run, instance } = log;
          return printJson({
            run: run.id,
            dag: run.dag_id,
            task: instance.task_id,
            map_index: instance.map_index,
            item: instance.map_index >= 0 ? itemOf(log) : null,
            state: instance.state,
            try: log.try,
            tries: log.tries,
            lines: log.lines,
          });
        }
        process.stderr.write(describeShown(log, runId));
        printLines(log);
      }),
    );
}
