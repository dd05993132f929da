import path from 'node:path';
import type { Command } from 'commander';
import { printJson } from './output.ts';
import type { Collision } from '../server/engine/collisions.ts';
import type { DagRegistry } from '../server/engine/loader.ts';
import { toLocal } from '../server/engine/timetable.ts';

/** 'YYYY-MM-DD HH:MM' in a zone. */
function local(at: Date, timezone: string, withDate = true): string {
  const t = toLocal(at, timezone);
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(t.hour)}:${pad(t.minute)}`;
  return withDate ? `${t.year}-${pad(t.month)}-${pad(t.day)} ${time}` : time;
}

/** The DAG folder only: checking windows needs neither PostgreSQL nor Redis, so it runs anywhere (CI, a laptop) before deployment. */
async function loadRegistry(): Promise<DagRegistry> {
  const config = (await import('../core/config.ts')).loadConfig();
  const { BUNDLED_DAGS_DIR, loadDagFolder } = await import('../server/engine/dag-imports.ts');
  const registry = await loadDagFolder(path.resolve(config.HUBFLOW_DAGS_DIR ?? BUNDLED_DAGS_DIR));
  for (const e of registry.errors) process.stderr.write(`error: ${e.message}\n`);
  return registry;
}

function days(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 366) throw new Error(`--days: a whole number of days from 1 to 366, not '${value}'`);
  return n;
}

export function describeCollision(c: Collision): string {
  const tz = c.timezone;
  const verdict = c.missesWindow
    ? `MISSES its start window (closes ${local(c.windowEnd!, tz, false)})`
    : c.missesDeadline
      ? `MISSES its deadline (${local(c.deadline!, tz)})`
      : c.windowEnd
        ? `still inside its start window (closes ${local(c.windowEnd, tz, false)})`
        : 'deferred';
  return [
    `${c.missesWindow || c.missesDeadline ? 'COLLISION' : 'deferral '}  ${c.dag}/${c.task} needs ${c.resource}: ${c.blackout.reason}, ${local(c.blackout.start, tz)} to ${local(c.blackout.end, tz, false)} ${tz}`,
    `           run due ${local(c.due, tz)}, task could start ${local(c.earliest, tz, false)}, can start ${local(c.deferredTo, tz, false)}: ${verdict}`,
  ].join('\n');
}

export function registerWindowCommands(program: Command): void {
  const windows = program.command('windows').description('resource blackouts against DAG schedules, before anything runs');

  windows
    .command('check')
    .description(
      'every scheduled run of the next days against every blackout its tasks meet; exit 1 if a task cannot start inside its start window (or before its deadline)',
    )
    .option('--days <n>', 'how many days ahead', '7')
    .option('--strict', 'exit 1 on any collision, even one that only defers a task')
    .option('--json', 'print JSON')
    .action(async (opts: { days: string; strict?: boolean; json?: boolean }) => {
      const registry = await loadRegistry();
      const { findCollisions } = await import('../server/engine/collisions.ts');
      const from = new Date();
      const collisions = findCollisions(registry, from, new Date(from.getTime() + days(opts.days) * 86_400_000));
      const failing = collisions.filter((c) => c.missesWindow || c.missesDeadline || opts.strict);
      if (opts.json) printJson({ from, days: Number(opts.days), collisions, failing: failing.length });
      else if (!collisions.length)
        process.stdout.write(`no collisions in the next ${opts.days} days (${registry.dags.size} DAGs, ${registry.resources.size} resources)\n`);
      else {
        process.stdout.write(`${collisions.map(describeCollision).join('\n')}\n\n`);
        process.stdout.write(
          `${collisions.length} task starts meet a blackout; ${failing.length} ${opts.strict ? 'fail --strict' : 'cannot start inside their window or before their deadline'}\n`,
        );
      }
      if (failing.length || registry.errors.length) process.exitCode = 1;
    });

  windows
    .command('show')
    .description('a calendar of the next days per resource: its blackouts and the scheduled task starts that use it')
    .option('--days <n>', 'how many days ahead', '3')
    .option('--json', 'print JSON')
    .action(async (opts: { days: string; json?: boolean }) => {
      const registry = await loadRegistry();
      const { plannedRuns, taskStarts } = await import('../server/engine/collisions.ts');
      const from = new Date();
      const to = new Date(from.getTime() + days(opts.days) * 86_400_000);
      const runs = plannedRuns(registry, from, to);
      const calendar = [...registry.resources.values()].map((resource) => ({
        resource: resource.id,
        slots: resource.slots ?? null,
        onBlackout: resource.onBlackout,
        blackouts: resource.blackouts
          .flatMap((b) => b.overlapping(from, to).map((w) => ({ ...w, timezone: b.timezone })))
          .sort((a, b) => a.start.getTime() - b.start.getTime()),
        starts: runs.flatMap(({ dag, due }) =>
          taskStarts(registry, dag, due)
            .filter((s) => s.task.uses.includes(resource.id))
            .map((s) => ({ dag: dag.id, task: s.task.id, due: s.earliest, startsAt: s.at, timezone: dag.schedule?.timezone ?? 'UTC' })),
        ),
      }));
      if (opts.json) return printJson({ from, to, resources: calendar });
      for (const r of calendar) {
        process.stdout.write(
          `${r.resource}  (${r.slots ? `${r.slots} slots` : 'no slot limit'}; a running task ${r.onBlackout === 'finish' ? 'finishes' : 'is cancelled'} when a blackout begins)\n`,
        );
        if (!r.blackouts.length) process.stdout.write('  no blackouts\n');
        for (const b of r.blackouts)
          process.stdout.write(`  held   ${local(b.start, b.timezone)} to ${local(b.end, b.timezone, false)} ${b.timezone}  ${b.reason}\n`);
        for (const s of r.starts) {
          const moved = s.startsAt > s.due ? `, deferred to ${local(s.startsAt, s.timezone, false)}` : '';
          process.stdout.write(`  start  ${local(s.due, s.timezone)} ${s.timezone}  ${s.dag}/${s.task}${moved}\n`);
        }
        process.stdout.write('\n');
      }
    });
}
