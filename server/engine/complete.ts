import { sql } from 'kysely';
import type { QueryResult } from 'pg';
import { describeError } from '../../core/errors.ts';
import { type HeldClient, kyselyOnClient } from '../../core/pg.ts';
import type { RunState, StoreSchema } from '../store/schema.ts';
import { advanceRun, buildSnapshot, type Dispatchable, type RunRef, type SnapshotRow } from './advance.ts';
import { decisionsOf } from './branch.ts';
import { withRetry } from './retrying.ts';
import type { Completion, EngineContext, RawWrite } from './types.ts';

/*
 * The completion of task instances: the engine's hottest path, flushed in batches (tasks.ts
 * groups the completions of a worker's tries, this writes a group).
 */

type CompletionRow = SnapshotRow & {
  kind: 'run' | 'count' | 'done';
  run_id: number;
  dag_id: string;
  run_state: RunState;
  failed: number;
  ti_id: number;
  map_index: number;
  try_number: number;
};

/**
 * Records a batch of finished tries in one transaction of three round trips: BEGIN; one call
 * for run locks, outcomes, attempts, dead letters and the runs' state counts; the decisions'
 * writes with the COMMIT. Completions are the engine's hottest path, and on a
 * busy worker each round trip costs more in event-loop queueing than in PostgreSQL.
 */
export async function completeBatch(engine: EngineContext, held: HeldClient, items: Completion[]): Promise<undefined[]> {
  const ids = items.map((i) => i.tiId);
  const errors = items.map((i) => {
    if (i.outcome === 'success') return null;
    // A skip's reason is its message; its stack says nothing an operator needs.
    const { name, message, stack } = describeError(i.error);
    return JSON.stringify(i.outcome === 'skipped' ? { name, message } : { name, message, stack });
  });
  const runIds = [...new Set(items.map((i) => i.runId))].sort((a, b) => a - b);
  // The tasks the decisions read: the finished tasks' downstream, and the upstream of those.
  const watched = new Map<number, Set<string>>();
  for (const i of items) {
    const dag = engine.dags.dags.get(i.dagId);
    const tasks = watched.get(i.runId) ?? new Set<string>();
    watched.set(i.runId, tasks);
    for (const down of dag?.tasks.get(i.taskId)?.downstream ?? []) {
      tasks.add(down);
      for (const up of dag!.tasks.get(down)!.upstream) tasks.add(up);
    }
  }
  const watch = [...watched].flatMap(([runId, tasks]) => [...tasks].map((task) => [String(runId), task] as const));
  const outcome = await withRetry(() =>
    held.use(async (client) => {
      try {
        // BEGIN and the call in one simple-protocol round trip, so values travel as escaped
        // literals. The call locks the runs, records outcomes, attempts and dead letters, and
        // returns the runs' totals and the watched tasks' state counts (see hubflow_complete_tasks).
        const lit = (v: string | null) => (v === null ? 'null' : client.escapeLiteral(v));
        const array = (values: (string | null)[], type: string) => `array[${values.map(lit).join(',')}]::${type}[]`;
        const call = `begin; select * from hubflow_complete_tasks(${array(runIds.map(String), 'bigint')}, ${array(ids.map(String), 'bigint')},
        ${array(
          items.map((i) => i.outcome),
          'text',
        )}, ${array(
          items.map((i) => i.result ?? null),
          'jsonb',
        )}, ${array(errors, 'jsonb')},
        ${array(
          items.map((i) => String(i.attemptId)),
          'bigint',
        )}, ${array(
          watch.map((w) => w[0]),
          'bigint',
        )}, ${array(
          watch.map((w) => w[1]),
          'text',
        )})`;
        const results = (await client.query(call)) as unknown as QueryResult<CompletionRow>[];
        const rows = results[1]!.rows;
        const conn = kyselyOnClient<StoreSchema>(client);

        const runs = rows.filter((r) => r.kind === 'run');
        const counts = rows.filter((r) => r.kind === 'count');
        const finished = rows.filter((r) => r.kind === 'done');
        const writes: RawWrite[] = [];
        const dispatch: Dispatchable[] = [];
        const escalations: { run: RunRef; taskId: string; mapIndex: number; tries: number; error: unknown }[] = [];
        const finishedRuns: { run: RunRef; state: string }[] = [];
        for (const runId of runIds) {
          const totals = runs.find((c) => c.run_id === runId);
          if (!totals) continue;
          const run: RunRef = { id: runId, dag_id: totals.dag_id, state: totals.run_state };
          const dag = engine.dags.dags.get(run.dag_id);
          if (!dag) {
            engine.log.warn({ dagId: run.dag_id, runId }, 'run of a DAG that is no longer loaded: not advanced');
            continue;
          }
          const candidates = finished.filter((t) => t.run_id === runId).flatMap((t) => dag.tasks.get(t.task_id)?.downstream ?? []);
          const snapshot = buildSnapshot(
            counts.filter((c) => c.run_id === runId),
            watched.get(runId) ?? [],
            { live: Number(totals.n), failed: Number(totals.failed) },
          );
          const succeeded = finished.filter((t) => t.run_id === runId && t.state === 'success');
          snapshot.branches = decisionsOf(
            dag,
            succeeded.map((t) => [t.task_id, items[ids.indexOf(t.ti_id)]!.result] as const),
          );
          const result = await advanceRun(conn, run, dag, candidates, snapshot);
          if (result.write) writes.push(result.write);
          dispatch.push(...result.dispatch);
          for (const f of result.failed) escalations.push({ run, taskId: f.taskId, mapIndex: 0, tries: 0, error: f.error });
          if (result.finished) finishedRuns.push({ run, state: result.finished.state });
        }
        const commit = sql.join([...writes, sql.raw('commit')], sql.raw('; ')).compile(conn);
        if (commit.parameters.length) throw new Error('advance writes must be literals to share a simple-protocol query');
        // The jobs go to BullMQ while the COMMIT travels: a worker that is quicker than the
        // commit finds its instance still `scheduled`, and startTask waits for the commit.
        // Should the commit fail, those jobs start nothing, and the sweep replaces them.
        await Promise.all([client.query(commit.sql), engine.dispatch(dispatch)]);
        for (const t of finished) {
          if (t.state !== 'failed') continue;
          const item = items[ids.indexOf(t.ti_id)]!;
          escalations.push({
            run: { id: t.run_id, dag_id: t.dag_id, state: 'running' },
            taskId: t.task_id,
            mapIndex: t.map_index,
            tries: t.try_number,
            error: item.error,
          });
        }
        return { dispatch, escalations, finishedRuns };
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      }
    }),
  );

  for (const { run, state } of outcome.finishedRuns) {
    engine.log.info({ event: 'run_finished', dagId: run.dag_id, runId: run.id, state }, `run ${run.id} of ${run.dag_id}: ${state}`);
    // The next queued run of this DAG may start now that a slot is free.
    void engine.activate(run.dag_id).catch((err: unknown) => engine.log.error({ err }, 'activating queued runs failed'));
  }
  for (const e of outcome.escalations) {
    void engine.escalate({
      kind: 'dead_letter',
      dagId: e.run.dag_id,
      runId: e.run.id,
      taskId: e.taskId,
      mapIndex: e.mapIndex,
      tries: e.tries,
      owner: engine.dags.dags.get(e.run.dag_id)?.owner,
      message: describeError(e.error).message,
    });
  }
  return items.map(() => undefined);
}
