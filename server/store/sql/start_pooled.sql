-- hubflow_start_pooled(p_id, p_generation, p_worker): starts one instance that takes pool slots.
--
-- Inputs   p_id bigint, p_generation int (the generation its job was made for), p_worker text.
-- Outputs  the row hubflow_start_tasks returns for it, or no row: no room in one of its pools,
--          or the instance must not start (the caller tells the two apart).
-- Locks    the rows of the instance's pools in resource_pools, FOR UPDATE, in resource_id
--          order; then what hubflow_start_tasks locks.
--
-- Why      the slots in use are those of the pool's running instances (a worker that died keeps
--          its slots until its task is retried or failed, since the task may still be running).
--          Locking the pools' rows in one order makes concurrent starts on any number of
--          workers count one at a time without deadlocking.
create or replace function hubflow_start_pooled(p_id bigint, p_generation int, p_worker text)
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
end $$
