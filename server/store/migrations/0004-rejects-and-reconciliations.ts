import { sql, type Kysely } from 'kysely';

/**
 * What a run proves and what it refused. `rejects` keeps every record an extract or a filing
 * could not take, with its reason, so nothing is lost silently; `reconciliations` holds, per
 * run, scope and entity, the counts and checksums of source, staging and target and the
 * record-level result, and `reconciliation_fields` the mismatches per field.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table rejects (
    id bigint generated always as identity primary key,
    run_id bigint not null references dag_runs (id) on delete cascade,
    task_id text not null,
    kind text not null,
    entity text not null,
    tenant_id text,
    record_key text not null,
    field text not null,
    reason text not null,
    raw text,
    created_at timestamptz not null default now()
  )`.execute(db);
  await sql`create index rejects_run on rejects (run_id, entity, tenant_id)`.execute(db);
  await sql`create table reconciliations (
    id bigint generated always as identity primary key,
    run_id bigint not null references dag_runs (id) on delete cascade,
    logical_date date not null,
    entity text not null,
    tenant_id text not null,
    source_count bigint not null,
    source_sum text not null,
    rejected bigint not null,
    staged_count bigint not null,
    current_count bigint not null,
    current_sum text not null,
    matched bigint not null,
    mismatched bigint not null,
    missing_in_target bigint not null,
    missing_in_source bigint not null,
    mismatch_rate double precision not null,
    severity text not null check (severity in ('none', 'low', 'medium', 'critical')),
    status text not null check (status in ('ok', 'escalated', 'failed')),
    checked_at timestamptz not null default now(),
    unique (run_id, entity, tenant_id)
  )`.execute(db);
  await sql`create table reconciliation_fields (
    reconciliation_id bigint not null references reconciliations (id) on delete cascade,
    field text not null,
    field_class text not null,
    severity text not null,
    mismatched bigint not null,
    sample_keys text[] not null,
    primary key (reconciliation_id, field)
  )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists reconciliation_fields`.execute(db);
  await sql`drop table if exists reconciliations`.execute(db);
  await sql`drop table if exists rejects`.execute(db);
}
