import { sql, type Kysely } from 'kysely';

/*
 * Starts look each instance up by id. The first version listed the states an instance may
 * start from, which matched the partial index of live instances, and the planner scanned that
 * whole index (a thousand entries, mid fan-out) for every start.
 *
 * Completions read only what their decisions need. The first version returned every task's
 * state counts, with its waiting instances as JSON, for the whole run on every completion: a
 * cost that grew with the run (a 200-task chain rebuilt 200 tasks' worth of JSON per hop).
 * This one returns the counts of the tasks the caller watches (the finished tasks' downstream
 * and their upstreams) and, per run, two totals that say whether the run is over: instances
 * not yet finished, and instances failed.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // As in 0002 but for the instance filter; hubflow_start_pooled calls it unchanged.
  await sql`
    create or replace function hubflow_start_tasks(p_ids bigint[], p_generations int[], p_worker text)
    returns table (id bigint, run_id bigint, task_id text, map_index int, try_number int, max_tries int, map_item jsonb,
                   attempt_id bigint, dag_id text, logical_date timestamptz, interval_start timestamptz,
                   interval_end timestamptz, conf jsonb)
    language plpgsql volatile as $$
    begin
      perform set_config('synchronous_commit', 'off', true);
      return query
      with s as (
        update task_instances ti
        set state = 'running', try_number = ti.try_number + 1, started_at = coalesce(ti.started_at, now()),
            heartbeat_at = now(), worker = p_worker, next_try_at = null, deferred_until = null, deferred_reason = null
        from unnest(p_ids, p_generations) as j(id, gen)
        -- "Neither waiting nor finished" rather than the list of live states: that list would let
        -- the planner scan the partial index of every live instance (a thousand, mid fan-out)
        -- instead of looking each one up by id.
        where ti.id = j.id and ti.generation = j.gen
          and ti.state not in ('scheduled', 'success', 'failed', 'upstream_failed', 'skipped') and ti.try_number < ti.max_tries
        returning ti.id, ti.run_id, ti.task_id, ti.map_index, ti.try_number, ti.max_tries, ti.map_item
      ), lost as (
        update attempts a set ended_at = now(), outcome = 'lost',
          error = '{"name": "WorkerLost", "message": "the worker running this attempt stopped before it finished"}'
        where a.ti_id in (select s.id from s) and a.ended_at is null
      ), a as (
        insert into attempts (ti_id, try_number, worker, started_at, outcome)
        select s.id, s.try_number, p_worker, now(), 'running' from s
        returning attempts.id, attempts.ti_id
      )
      select s.id, s.run_id, s.task_id, s.map_index, s.try_number, s.max_tries, s.map_item, a.id,
             r.dag_id, r.logical_date, r.interval_start, r.interval_end, r.conf
      from s join a on a.ti_id = s.id join dag_runs r on r.id = s.run_id;
    end $$`.execute(db);
  await sql`drop function hubflow_complete_tasks(bigint[], bigint[], text[], jsonb[], jsonb[], bigint[])`.execute(db);
  /*
   * Records finished tries, inside the caller's transaction. First locks the runs, in id order
   * (concurrent batches cannot deadlock; one transaction at a time decides a run's fan-in and
   * completion). The next statement runs on a fresh snapshot, after the lock, so it reads what
   * the previous holder committed. It records outcomes (only of instances still running),
   * closes the attempts, dead-letters the failures, and returns:
   *   kind 'run':   per run, its DAG and state; n = instances not finished, failed = instances
   *                 failed or upstream_failed (after this call);
   *   kind 'count': per watched (run, task) and state, how many instances, with the waiting
   *                 (scheduled) ones as JSON;
   *   kind 'done':  each instance this call finished.
   */
  await sql`
    create function hubflow_complete_tasks(p_runs bigint[], p_ids bigint[], p_states text[], p_results jsonb[],
                                           p_errors jsonb[], p_attempts bigint[], p_watch_runs bigint[], p_watch_tasks text[])
    returns table (kind text, run_id bigint, dag_id text, run_state text, task_id text, state text, n int, failed int,
                   waiting json, ti_id bigint, map_index int, try_number int)
    language plpgsql volatile as $$
    begin
      perform 1 from dag_runs r where r.id = any(p_runs) order by r.id for update;
      return query
      with v as (
        select * from unnest(p_ids, p_states, p_results, p_errors, p_attempts) as v(id, state, result, error, attempt_id)
      ), upd as (
        update task_instances ti
        set state = v.state, result = v.result, error = v.error, ended_at = now(), heartbeat_at = null
        from v where ti.id = v.id and ti.state = 'running'
        returning ti.id, ti.run_id, ti.dag_id, ti.task_id, ti.map_index, ti.try_number, v.state, v.error
      ), att as (
        update attempts a set ended_at = now(), outcome = v.state, error = v.error
        from v where a.id = v.attempt_id and a.ended_at is null
      ), dead as (
        insert into dead_letters (ti_id, run_id, dag_id, task_id, map_index, tries, error)
        select upd.id, upd.run_id, upd.dag_id, upd.task_id, upd.map_index, upd.try_number, upd.error
        from upd where upd.state = 'failed'
      ), now_state as (
        -- The statement's snapshot predates its own updates: states are read through upd.
        select ti.id, ti.run_id, ti.task_id, coalesce(upd.state, ti.state) as state, ti.map_index, ti.try_number, ti.max_tries, ti.generation
        from task_instances ti left join upd on upd.id = ti.id
        where ti.run_id = any(p_runs)
      )
      select 'run'::text, r.id, r.dag_id, r.state, null::text, null::text,
             t.live, t.failed, null::json, null::bigint, null::int, null::int
      from (
        select s.run_id,
               (count(*) filter (where s.state not in ('success', 'failed', 'upstream_failed', 'skipped')))::int as live,
               (count(*) filter (where s.state in ('failed', 'upstream_failed')))::int as failed
        from now_state s group by s.run_id
      ) t join dag_runs r on r.id = t.run_id
      union all
      -- Grouped in the "C" collation: byte order is all grouping needs.
      select 'count'::text, s.run_id, null::text, null::text, s.task_id collate "C", s.state collate "C", count(*)::int, null::int,
             json_agg(json_build_object('id', s.id, 'map_index', s.map_index, 'try_number', s.try_number,
                                        'max_tries', s.max_tries, 'generation', s.generation))
               filter (where s.state = 'scheduled'),
             null::bigint, null::int, null::int
      from now_state s join unnest(p_watch_runs, p_watch_tasks) as w(run_id, task_id) on w.run_id = s.run_id and w.task_id = s.task_id
      group by s.run_id, s.task_id collate "C", s.state collate "C"
      union all
      select 'done'::text, upd.run_id, upd.dag_id, null::text, upd.task_id, upd.state, 1, null::int, null::json, upd.id, upd.map_index, upd.try_number
      from upd;
    end $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop function if exists hubflow_complete_tasks(bigint[], bigint[], text[], jsonb[], jsonb[], bigint[], bigint[], text[])`.execute(db);
}
