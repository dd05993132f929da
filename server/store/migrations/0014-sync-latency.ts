import { sql, type Kysely } from 'kysely';

/**
 * Sync latency as measured: one row per load (entity and scope) or filing, holding the histogram
 * of the latencies it saw (counts per fixed bucket, see server/engine/sync-latency.ts), so any
 * window's percentiles come from merging rows, never from re-reading the warehouse. A row of the
 * CDC stream has no DAG run; it names its integration instead.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table sync_latency (
      id bigserial primary key,
      dag_id text,
      run_id bigint,
      task_id text,
      integration text,
      kind text not null check (kind in ('version', 'filing')),
      entity text not null,
      scope text,
      source text not null check (source in ('wal_commit', 'updated_at', 'data_cut')),
      count bigint not null check (count > 0),
      sum_seconds float8 not null,
      min_seconds float8 not null,
      max_seconds float8 not null,
      buckets bigint[] not null,
      visible_at timestamptz not null,
      recorded_at timestamptz not null default now(),
      check (dag_id is not null or integration is not null)
    )`.execute(db);
  await sql`create index sync_latency_recorded on sync_latency (recorded_at)`.execute(db);
  await sql`create index sync_latency_dag on sync_latency (dag_id, recorded_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table sync_latency`.execute(db);
}
