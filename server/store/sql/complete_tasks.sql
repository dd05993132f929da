-- hubflow_complete_tasks(...): records a batch of finished tries, inside the caller's transaction.
--
-- Inputs   p_runs bigint[]: the runs the batch touches, sorted by id;
--          p_ids bigint[], p_states text[], p_results jsonb[], p_errors jsonb[], p_attempts bigint[]:
--            parallel, one entry per finished try (instance, outcome 'success' | 'failed' |
--            'skipped', result, error, attempt);
--          p_watch_runs bigint[], p_watch_tasks text[]: parallel, the (run, task) pairs whose
--            states the caller's decisions read (the finished tasks' downstream and their upstream).
-- Outputs  rows of three kinds:
--            'done':  each instance this call finished (only instances still `running` take an
--                     outcome: a cancelled or restarted one keeps its state);
--            'run':   per run, its DAG and state; n = waiting instances, plus 1 if any other is
--                     not finished (0: nothing left); failed = 1 if any instance failed or
--                     upstream_failed;
--            'count': per watched (run, task): state 'scheduled' with the exact number of waiting
--                     instances and the instances as JSON; and n = 1 for each of 'running' (any
--                     queued, deferred, running or up_for_retry), 'success', 'failed' (or else
--                     'upstream_failed') and 'skipped' that at least one instance is in.
-- Locks    the runs' rows in dag_runs, FOR UPDATE, in id order, first: concurrent batches cannot
--          deadlock, and one transaction at a time decides a run's fan-in and completion. Then
--          the rows of the instances and attempts it updates.
-- Writes   the outcomes, the attempts' ends, a dead letter per failure.
--
-- Why      one call instead of a statement per step keeps a completion to three round trips
--          (BEGIN with this call; the decisions' writes with COMMIT). The totals and probes are a
--          later statement than the updates, so they see them. A trigger rule only asks whether
--          upstream instances in each state exist, so each probe is one lookup in a partial index
--          of the instances in those states, never a count of a fan: the cost does not grow with
--          the run. Airflow's one_done tells a failed upstream from an upstream_failed one
--          (trigger-rules.ts): only when some instance is in either does a second probe ask
--          whether one failed, so a run without failures pays nothing for it; 'upstream_failed'
--          is reported only without a failed one, which every other rule treats alike. The run's probes are lateral subqueries with LIMIT 1, not EXISTS in the select
--          list: the planner may run such an EXISTS as a hashed subplan, which reads every live
--          instance of the run (all 100,000 of a wide fan) on each call. The plan is generic
--          (planning the probes cost more than running them) and sequential scans are off, so a
--          plan made on small tables never scans large ones whole; parallel arrays are matched by
--          array_position rather than joined to an unnested copy.
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
  select 'run'::text, r.id, r.dag_id, r.state, null::text, null::text, (waiting.n + live.n)::int, failed.n::int,
         null::json, null::bigint, null::int, null::int
  from dag_runs r
  cross join lateral (select count(*) as n from task_instances t where t.run_id = r.id and t.state = 'scheduled') waiting
  cross join lateral (select count(*) as n from (select from task_instances t where t.run_id = r.id
                      and t.state in ('queued', 'deferred', 'running', 'up_for_retry') limit 1) x) live
  cross join lateral (select count(*) as n from (select from task_instances t where t.run_id = r.id
                      and t.state in ('failed', 'upstream_failed') limit 1) x) failed
  where r.id = any(p_runs)
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
    select case when exists (select 1 from task_instances t where t.run_id = w.run_id and t.task_id = w.task_id and t.state = 'failed')
                then 'failed' else 'upstream_failed' end
    where exists (select 1 from task_instances t where t.run_id = w.run_id and t.task_id = w.task_id
                  and t.state in ('failed', 'upstream_failed'))
    union all
    select 'skipped' where exists (select 1 from task_instances t where t.run_id = w.run_id and t.task_id = w.task_id and t.state = 'skipped')
  ) p;
end $$
