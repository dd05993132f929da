import { sql, type Kysely } from 'kysely';

/*
 * The engine's two hottest statements, as functions. PL/pgSQL prepares the statements inside a
 * function once per session and reuses their plans; sent as plain queries, these CTEs spent
 * more time being parsed and planned than executed.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  /*
   * Starts task instances: each one that the store still expects (generation matches, not
   * finished, tries left) becomes `running` with a new attempt. A start while the instance is
   * still `running` means the worker of its open attempt died: that attempt is closed as lost.
   * Returns one row per started instance, with what the task's context needs.
   *
   * Its commit does not wait for the WAL flush: it is on every task's critical path, and a start
   * lost to a PostgreSQL crash is harmless. The instance is then still `queued`, the finished
   * try's outcome cannot be recorded against it (only `running` instances take outcomes), and
   * the recovery sweep gives it a new job. Outcomes, which carry results, are always durable.
   */
  await sql`
    create function hubflow_start_tasks(p_ids bigint[], p_generations int[], p_worker text)
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
        where ti.id = j.id and ti.generation = j.gen
          and ti.state in ('queued', 'deferred', 'up_for_retry', 'running') and ti.try_number < ti.max_tries
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

  /*
   * Starts one instance that takes slots in pools, if every pool has room: the slots in use are
   * those of the pool's running instances (a worker that died keeps its slots until its task is
   * retried or failed, since the task may still be running). The pools' rows are locked, in
   * order, so concurrent starts on any number of workers count one at a time. No rows: no room.
   */
  await sql`
    create function hubflow_start_pooled(p_id bigint, p_generation int, p_worker text)
    returns table (id bigint, run_id bigint, task_id text, map_index int, try_number int, max_tries int, map_item jsonb,
                   attempt_id bigint, dag_id text, logical_date timestamptz, interval_start timestamptz,
                   interval_end timestamptz, conf jsonb)
    language plpgsql volatile as $$
    declare
      v_pools text[];
      v_slots int;
    begin
      select t.pools, t.pool_slots into v_pools, v_slots from task_instances t where t.id = p_id;
      perform 1 from resource_pools p where p.resource_id = any(v_pools) order by p.resource_id for update;
      if exists (
        select 1 from resource_pools p
        where p.resource_id = any(v_pools)
          and p.slots < v_slots + (select coalesce(sum(r.pool_slots), 0)::int from task_instances r
                                   where r.state = 'running' and r.id <> p_id and p.resource_id = any(r.pools))
      ) then
        return;
      end if;
      return query select * from hubflow_start_tasks(array[p_id], array[p_generation], p_worker) s;
    end $$`.execute(db);

  /*
   * Records finished tries, inside the caller's transaction. First locks the runs, in id order
   * (concurrent batches cannot deadlock; one transaction at a time decides a run's fan-in and
   * completion). The next statement runs on a fresh snapshot, after the lock, so it reads what
   * the previous holder committed. It records outcomes (only of instances still running),
   * closes the attempts, dead-letters the failures, and returns:
   *   kind 'count': per run, task and state, how many instances (after this call), with the
   *                 waiting (scheduled) instances as JSON;
   *   kind 'done':  each instance this call finished.
   */
  await sql`
    create function hubflow_complete_tasks(p_runs bigint[], p_ids bigint[], p_states text[], p_results jsonb[],
                                           p_errors jsonb[], p_attempts bigint[])
    returns table (kind text, run_id bigint, dag_id text, run_state text, task_id text, state text, n int,
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
      )
      -- Grouped in the "C" collation: byte order is all grouping needs, and a locale-aware sort
      -- of these keys cost more than the rest of the call.
      select 'count'::text, c.run_id, r.dag_id, r.state, c.task_id, c.state, c.n, c.waiting,
             null::bigint, null::int, null::int
      from (
        select ti.run_id, ti.task_id collate "C" as task_id, coalesce(upd.state, ti.state) collate "C" as state, count(*)::int as n,
               json_agg(json_build_object('id', ti.id, 'map_index', ti.map_index, 'try_number', ti.try_number,
                                          'max_tries', ti.max_tries, 'generation', ti.generation))
                 filter (where coalesce(upd.state, ti.state) = 'scheduled') as waiting
        from task_instances ti left join upd on upd.id = ti.id
        where ti.run_id = any(p_runs)
        group by 1, 2, 3
      ) c join dag_runs r on r.id = c.run_id
      union all
      select 'done'::text, upd.run_id, upd.dag_id, null::text, upd.task_id, upd.state, 1, null::json, upd.id, upd.map_index, upd.try_number
      from upd;
    end $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop function if exists hubflow_complete_tasks`.execute(db);
  await sql`drop function if exists hubflow_start_pooled`.execute(db);
  await sql`drop function if exists hubflow_start_tasks`.execute(db);
}
