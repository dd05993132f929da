import { sql, type Kysely } from 'kysely';

// Tables are created unqualified: the connection's search_path names hubflow's schema.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('dags')
    .addColumn('dag_id', 'text', (c) => c.primaryKey())
    .addColumn('is_paused', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('file', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('dag_runs')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('dag_id', 'text', (c) => c.notNull())
    .addColumn('logical_date', 'timestamptz', (c) => c.notNull())
    .addColumn('interval_start', 'timestamptz', (c) => c.notNull())
    .addColumn('interval_end', 'timestamptz', (c) => c.notNull())
    .addColumn('run_type', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('conf', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('due_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('started_at', 'timestamptz')
    .addColumn('ended_at', 'timestamptz')
    .addColumn('sla_alerted_at', 'timestamptz')
    .addColumn('sla_reason', 'text')
    // One run per DAG and logical date: this key is what keeps two schedulers from doubling runs.
    .addUniqueConstraint('dag_runs_dag_logical_date', ['dag_id', 'logical_date'])
    .execute();
  await sql`create index dag_runs_active on dag_runs (dag_id, logical_date) where state in ('queued', 'running')`.execute(db);
  // /metrics reads the runs that started or ended since its last scrape.
  await sql`create index dag_runs_started_at on dag_runs (started_at)`.execute(db);
  await sql`create index dag_runs_ended_at on dag_runs (ended_at)`.execute(db);

  await db.schema
    .createTable('task_instances')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('run_id', 'bigint', (c) => c.notNull().references('dag_runs.id').onDelete('cascade'))
    .addColumn('dag_id', 'text', (c) => c.notNull())
    .addColumn('task_id', 'text', (c) => c.notNull())
    .addColumn('map_index', 'integer', (c) => c.notNull().defaultTo(-1))
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('try_number', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_tries', 'integer', (c) => c.notNull())
    .addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('map_item', 'jsonb')
    .addColumn('result', 'jsonb')
    .addColumn('error', 'jsonb')
    .addColumn('ready_at', 'timestamptz')
    .addColumn('started_at', 'timestamptz')
    .addColumn('ended_at', 'timestamptz')
    .addColumn('next_try_at', 'timestamptz')
    .addColumn('heartbeat_at', 'timestamptz')
    .addColumn('worker', 'text')
    .addColumn('deferred_until', 'timestamptz')
    .addColumn('deferred_reason', 'text')
    .addColumn('pools', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('pool_slots', 'integer', (c) => c.notNull().defaultTo(1))
    .addUniqueConstraint('task_instances_run_task_map', ['run_id', 'task_id', 'map_index'])
    .execute();
  await sql`create index task_instances_live on task_instances (run_id) where state in ('queued', 'deferred', 'running', 'up_for_retry')`.execute(db);
  // Pool checks sum the slots of running instances: only those rows.
  await sql`create index task_instances_running on task_instances (id) where state = 'running'`.execute(db);

  await db.schema
    .createTable('resource_pools')
    .addColumn('resource_id', 'text', (c) => c.primaryKey())
    .addColumn('slots', 'integer', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('attempts')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('ti_id', 'bigint', (c) => c.notNull().references('task_instances.id').onDelete('cascade'))
    .addColumn('try_number', 'integer', (c) => c.notNull())
    .addColumn('worker', 'text', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('ended_at', 'timestamptz')
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('error', 'jsonb')
    .addUniqueConstraint('attempts_ti_try', ['ti_id', 'try_number'])
    .execute();
  await sql`create index attempts_ended_at on attempts (ended_at)`.execute(db);

  await db.schema
    .createTable('dead_letters')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('ti_id', 'bigint', (c) => c.notNull().references('task_instances.id').onDelete('cascade'))
    .addColumn('run_id', 'bigint', (c) => c.notNull())
    .addColumn('dag_id', 'text', (c) => c.notNull())
    .addColumn('task_id', 'text', (c) => c.notNull())
    .addColumn('map_index', 'integer', (c) => c.notNull())
    .addColumn('tries', 'integer', (c) => c.notNull())
    .addColumn('error', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('resolved_at', 'timestamptz')
    .addColumn('resolution', 'text')
    .execute();
  await sql`create index dead_letters_open on dead_letters (created_at) where resolved_at is null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['resource_pools', 'dead_letters', 'attempts', 'task_instances', 'dag_runs', 'dags']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
