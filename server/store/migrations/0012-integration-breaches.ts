import { sql, type Kysely } from 'kysely';

/**
 * The SLO breaches of integrations: one open row (recovered_at null) per DAG and SLO while it is
 * breached, so the alert is raised once per breach, whichever scheduler checks and how often.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table integration_breaches (
      id bigserial primary key,
      dag_id text not null,
      integration text not null,
      slo text not null,
      detail text not null,
      breached_at timestamptz not null default now(),
      recovered_at timestamptz
    )`.execute(db);
  await sql`create unique index integration_breaches_open on integration_breaches (dag_id, slo) where recovered_at is null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table integration_breaches`.execute(db);
}
