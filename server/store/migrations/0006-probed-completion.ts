import { sql, type Kysely } from 'kysely';

/*
 * Completions probe indexes instead of counting instances. 0005 counted every instance of
 * the run (for its totals) and of each watched task on every completion: a mapped fan of
 * 1,000 instances was counted in full by each of the ~30 batches that finished its members.
 *
 * A trigger rule only asks whether upstream instances in each state exist (see decide() in
 * trigger-rules.ts): whether any succeeded, failed or was skipped, and whether any has not
 * finished. So a watched task now gets its waiting (scheduled) instances, exactly, and for
 * every other kind of state one row when at least one instance is in it. A run gets the
 * number of its waiting instances plus one if any instance is queued, deferred, running or
 * up for retry: zero exactly when the run has nothing left, which is all its totals are for.
 * Each probe is one lookup in a partial index holding only the instances in those states.
 *
 * Both functions now reach rows only by key and by these partial indexes, and say so to the
 * planner. Their plans are generic (planning the probes cost more than running them), and a
 * generic plan made while the tables were small must not scan them whole once they are large:
 * sequential scans are off inside the two functions. Parallel arrays are matched by
 * array_position rather than joined to an unnested copy, which a plan that misjudged the
 * batch's size ran as a nested loop over every pair.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index task_instances_waiting on task_instances (run_id, task_id) where state = 'scheduled'`.execute(db);
  await sql`create index task_instances_live_task on task_instances (run_id, task_id) where state in ('queued', 'deferred', 'running', 'up_for_retry')`.execute(
    db,
  );
  await sql`create index task_instances_unsuccessful on task_instances (run_id, task_id) where state in ('failed', 'upstream_failed', 'skipped')`.execute(db);
  // Its (run_id) prefix serves every query the old one did.
  await sql`drop index task_instances_live`.execute(db);

  // As in 0005 but for how it finds the instances and their open attempts; hubflow_start_pooled calls it unchanged.
  await sql`
    create or replace function hubflow_start_tasks(p_ids bigint[], p_generations int[], p_worker text)
    returns table (id bigint, run_id bigint, task_id text, map_index int, try_number int, max_tries int, map_item jsonb,
                   attempt_id bigint, dag_id text, logical_date timestamptz, interval_start timestamptz,
                   interval_end timestamptz, conf jsonb)
    language plpgsql volatile set plan_cache_mode = force_generic_plan set enable_seqscan = off as $$
    begin
      perform set_config('synchronous_commit', 'off', true);
      return query
      with s as (
        update task_instances ti
        set state = 'running', try_number = ti.try_number + 1, started_at = coalesce(ti.started_at, now()),
            heartbeat_at = now(), worker = p_worker, next_try_at = null, deferred_until = null, deferred_reason = null
        where ti.id = any(p_ids) and ti.generation = p_generations[array_position(p_ids, ti.id)]
          and ti.state not in ('scheduled', 'success', 'failed', 'upstream_failed', 'skipped') and ti.try_number < ti.max_tries
        returning ti.id, ti.run_id, ti.task_id, ti.map_index, ti.try_number, ti.max_tries, ti.map_item
      ), lost as (
        update attempts a set ended_at = now(), outcome = 'lost',
          error = '{"name": "WorkerLost", "message": "the worker running this attempt stopped before it finished"}'
        where a.ti_id in (select s.id from s) and a.outcome = 'running'
      ), a as (
        insert into attempts (ti_id, try_number, worker, started_at, outcome)
        select s.id, s.try_number, p_worker, now(), 'running' from s
        returning attempts.id, attempts.ti_id
      )
      select s.id, s.run_id, s.task_id, s.map_index, s.try_number, s.max_tries, s.map_item, a.id,
             r.dag_id, r.logical_date, r.interval_start, r.interval_end, r.conf
      from s join a on a.ti_id = s.id join dag_runs r on r.id = s.run_id;
    end $$`.execute(db);

  /*
   * Records finished tries, inside the caller's transaction. First locks the runs, in id order
   * (concurrent batches cannot deadlock; one transaction at a time decides a run's fan-in and
   * completion). It records outcomes (only of instances still running), closes the attempts,
   * dead-letters the failures, and returns:
   *   kind 'done':  each instance this call finished;
   *   kind 'run':   per run, its DAG and state; n = waiting instances, plus 1 if any other is
   *                 not finished (0: nothing left); failed = 1 if any instance failed or
   *                 upstream_failed;
   *   kind 'count': per watched (run, task): state 'scheduled' with the exact number of waiting
   *                 instances and the instances as JSON; and n = 1 for each of 'running' (any
   *                 queued, deferred, running or up_for_retry), 'success', 'failed' (failed or
   *                 upstream_failed) and 'skipped' that at least one instance is in.
   * The totals and probes are a later statement than the updates, so they see them.
   */
  await sql`
    create or replace function hubflow_complete_tasks(p_runs bigint[], p_ids bigint[], p_states text[], p_results jsonb[],
                                                      p_errors jsonb[], p_attempts bigint[], p_watch_runs bigint[], p_watch_tasks text[])
    returns table (kind text, run_id bigint, dag_id text, run_state text, task_id text, state text, n int, failed int,
                   waiting json, ti_id bigint, map_index int, try_number int)
    language plpgsql volatile set plan_cache_mode = force_generic_plan set enable_seqscan = off as $$
    begin
      perform 1 from dag_runs r where r.id = any(p_runs) order by r.id for update;
      return query
      with upd as (
        update task_instances ti
        set state = p_states[array_position(p_ids, ti.id)], result = p_results[array_position(p_ids, ti.id)],
            error = p_errors[array_position(p_ids, ti.id)], ended_at = now(), heartbeat_at = null
        where ti.id = any(p_ids) and ti.state = 'running'
        returning ti.id, ti.run_id, ti.dag_id, ti.task_id, ti.map_index, ti.try_number, ti.state, ti.error
      ), att as (
        update attempts a
        set ended_at = now(), outcome = p_states[array_position(p_attempts, a.id)], error = p_errors[array_position(p_attempts, a.id)]
        where a.id = any(p_attempts) and a.outcome = 'running'
      ), dead as (
        insert into dead_letters (ti_id, run_id, dag_id, task_id, map_index, tries, error)
        select upd.id, upd.run_id, upd.dag_id, upd.task_id, upd.map_index, upd.try_number, upd.error
        from upd where upd.state = 'failed'
      )
      select 'done'::text, upd.run_id, upd.dag_id, null::text, upd.task_id, upd.state, 1, null::int, null::json, upd.id, upd.map_index, upd.try_number
      from upd;

      return query
      select 'run'::text, r.id, r.dag_id, r.state, null::text, null::text,
             ((select count(*) from task_instances t where t.run_id = r.id and t.state = 'scheduled')
               + (exists (select 1 from task_instances t where t.run_id = r.id
                          and t.state in ('queued', 'deferred', 'running', 'up_for_retry')))::int)::int,
             (exists (select 1 from task_instances t where t.run_id = r.id and t.state in ('failed', 'upstream_failed')))::int,
             null::json, null::bigint, null::int, null::int
      from dag_runs r where r.id = any(p_runs)
      union all
      select 'count'::text, w.run_id, null::text, null::text, w.task_id, 'scheduled'::text, count(*)::int, null::int,
             json_agg(json_build_object('id', t.id, 'map_index', t.map_index, 'try_number', t.try_number,
                                        'max_tries', t.max_tries, 'generation', t.generation)),
             null::bigint, null::int, null::int
      from unnest(p_watch_runs, p_watch_tasks) as w(run_id, task_id)
      join task_instances t on t.run_id = w.run_id and t.task_id = w.task_id and t.state = 'scheduled'
      group by w.run_id, w.task_id
      union all
      select 'count'::text, w.run_id, null::text, null::text, w.task_id, p.state, 1, null::int, null::json, null::bigint, null::int, null::int
      from unnest(p_watch_runs, p_watch_tasks) as w(run_id, task_id)
      cross join lateral (
        select 'running'::text as state where exists (select 1 from task_instances t where t.run_id = w.run_id and t.task_id = w.task_id
                                                      and t.state in ('queued', 'deferred', 'running', 'up_for_retry'))
        union all
        select 'success' where exists (select 1 from task_instances t where t.run_id = w.run_id and t.task_id = w.task_id and t.state = 'success')
        union all
        select 'failed' where exists (select 1 from task_instances t where t.run_id = w.run_id and t.task_id = w.task_id
                                      and t.state in ('failed', 'upstream_failed'))
        union all
        select 'skipped' where exists (select 1 from task_instances t where t.run_id = w.run_id and t.task_id = w.task_id and t.state = 'skipped')
      ) p;
    end $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`create index task_instances_live on task_instances (run_id) where state in ('queued', 'deferred', 'running', 'up_for_retry')`.execute(db);
  for (const index of ['task_instances_waiting', 'task_instances_live_task', 'task_instances_unsuccessful']) {
    await sql`drop index if exists ${sql.id(index)}`.execute(db);
  }
}
