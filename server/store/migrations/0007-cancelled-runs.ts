import { sql, type Kysely, type RawBuilder } from 'kysely';

/*
 * Runs can be cancelled. A cancelled run is in the run state `cancelled` with the reason it was
 * given; its unfinished task instances are `cancelled` too, and the open attempt of one that
 * was running ends with the outcome `cancelled`. The start function must then refuse them, so a
 * job BullMQ already holds for a cancelled instance starts nothing: `cancelled` joins the
 * states it never starts from. Otherwise as in 0006.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table dag_runs add column cancel_reason text`.execute(db);
  await startTasks(db, sql`('scheduled', 'success', 'failed', 'upstream_failed', 'skipped', 'cancelled')`);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await startTasks(db, sql`('scheduled', 'success', 'failed', 'upstream_failed', 'skipped')`);
  await sql`alter table dag_runs drop column cancel_reason`.execute(db);
}

async function startTasks(db: Kysely<unknown>, notStartable: RawBuilder<unknown>): Promise<void> {
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
          and ti.state not in ${notStartable} and ti.try_number < ti.max_tries
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
}
