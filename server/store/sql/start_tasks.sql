-- hubflow_start_tasks(p_ids, p_generations, p_worker): starts task instances, in one batch.
--
-- Inputs   p_ids bigint[], p_generations int[] (parallel: the generation each job was made for; an
--          id given twice is checked against its first generation, and starts at most once),
--          p_worker text (the worker's name, recorded on the instance and its attempt).
-- Outputs  one row per instance started, with what its task's context needs: the instance
--          (id, run_id, task_id, map_index, try_number, max_tries, map_item), its new
--          attempt_id, and its run's dag_id, logical_date, interval_start, interval_end, conf.
--          An instance that must not start (other generation, waiting, finished, cancelled,
--          out of tries) gives no row.
-- Locks    the row locks of the instances it updates and of the attempts it closes; no run
--          lock, so starts never wait on a completion deciding the same run.
-- Writes   each instance becomes `running` with try_number + 1; an attempt still open from an
--          earlier try (its worker died) is closed as `lost`; a new `running` attempt opens.
--
-- Why      a start is on every task's critical path, so its commit does not wait for the WAL
--          flush (synchronous_commit off, for this transaction only). A start lost to a
--          PostgreSQL crash is harmless: the instance is still `queued`, the finished try's
--          outcome cannot be recorded against it (only `running` instances take outcomes), and
--          the recovery sweep gives it a new job. Outcomes, which carry results, stay durable.
--          Only a later try can find an earlier attempt open, so a first try looks for none.
--          Instances are reached by id only ("not waiting nor finished" rather than a list of
--          live states, which let the planner scan a partial index of every live instance); the
--          plan is generic and sequential scans are off, so a plan made while the tables were
--          small never scans them whole once they are large. Parallel arrays are matched by
--          array_position, not joined to an unnested copy (a misjudged join ran as a nested loop).
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
      and ti.state not in ('scheduled', 'success', 'failed', 'upstream_failed', 'skipped', 'cancelled') and ti.try_number < ti.max_tries
    returning ti.id, ti.run_id, ti.task_id, ti.map_index, ti.try_number, ti.max_tries, ti.map_item
  ), lost as (
    update attempts a set ended_at = now(), outcome = 'lost',
      error = '{"name": "WorkerLost", "message": "the worker running this attempt stopped before it finished"}'
    where a.ti_id in (select s.id from s where s.try_number > 1) and a.outcome = 'running'
  ), a as (
    insert into attempts (ti_id, try_number, worker, started_at, outcome)
    select s.id, s.try_number, p_worker, now(), 'running' from s
    returning attempts.id, attempts.ti_id
  )
  select s.id, s.run_id, s.task_id, s.map_index, s.try_number, s.max_tries, s.map_item, a.id,
         r.dag_id, r.logical_date, r.interval_start, r.interval_end, r.conf
  from s join a on a.ti_id = s.id join dag_runs r on r.id = s.run_id;
end $$
