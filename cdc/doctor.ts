import pg from 'pg';
import { capturedTables, type CdcSource } from './source.ts';

/**
 * `hubflow cdc doctor`: what logical replication from the hub needs, checked one by one, each
 * failure with the change that fixes it. hubflow checks the hub's configuration; it never
 * changes the server's (a restart, ALTER SYSTEM and role rights are the DBA's).
 */

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  check: string;
  status: CheckStatus;
  detail: string;
  /** What to change; empty when the check passed. */
  fix: string;
}

export interface DoctorReport {
  /** False when any precondition fails (warnings do not). */
  ok: boolean;
  checks: Check[];
}

/** A slot whose unacknowledged WAL passes this share of max_slot_wal_keep_size is about to be invalidated. */
const LAG_WARN_SHARE = 0.5;

const ok = (check: string, detail: string): Check => ({ check, status: 'ok', detail, fix: '' });

export async function runDoctor(source: CdcSource): Promise<DoctorReport> {
  const client = new pg.Client({ connectionString: source.hubUrl, application_name: 'hubflow-cdc-doctor' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const checks = [
      await walLevel(client),
      await replicationRole(client),
      ...(await replicaIdentity(client, source)),
      await publication(client, source),
      ...(await slot(client, source)),
    ];
    return { ok: !checks.some((c) => c.status === 'fail'), checks };
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function setting(client: pg.Client, name: string): Promise<string> {
  const { rows } = await client.query<{ v: string }>('select current_setting($1) as v', [name]);
  return rows[0]!.v;
}

async function walLevel(client: pg.Client): Promise<Check> {
  const level = await setting(client, 'wal_level');
  if (level === 'logical') return ok('wal_level', 'logical');
  return {
    check: 'wal_level',
    status: 'fail',
    detail: `is '${level}'; logical decoding needs 'logical'`,
    fix:
      'set wal_level = logical in postgresql.conf and restart PostgreSQL (RDS/Aurora: rds.logical_replication = 1 and a reboot; ' +
      'Cloud SQL: cloudsql.logical_decoding = on and a restart; Azure Flexible Server: the wal_level server parameter and a restart)',
  };
}

async function replicationRole(client: pg.Client): Promise<Check> {
  const { rows } = await client.query<{ role: string; replication: boolean; rds: boolean }>(
    `select current_user as role, r.rolreplication or r.rolsuper as replication,
       coalesce((select pg_has_role(current_user, oid, 'member') from pg_roles where rolname = 'rds_replication'), false) as rds
     from pg_roles r where r.rolname = current_user`,
  );
  const r = rows[0]!;
  if (r.replication || r.rds) return ok('replication role', `${r.role} may stream logical changes`);
  return {
    check: 'replication role',
    status: 'fail',
    detail: `role ${r.role} has no REPLICATION attribute`,
    fix: `ALTER ROLE ${client.escapeIdentifier(r.role)} WITH REPLICATION; (RDS/Aurora: GRANT rds_replication TO ${client.escapeIdentifier(r.role)};)`,
  };
}

async function replicaIdentity(client: pg.Client, source: CdcSource): Promise<Check[]> {
  const tables = capturedTables(source);
  const { rows } = await client.query<{ table: string; identity: string }>(
    `select c.relname as table, c.relreplident as identity from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = $1 and c.relname = any($2) and c.relkind in ('r', 'p')`,
    [source.schema, tables.map((t) => t.entity.table)],
  );
  const found = new Map(rows.map((r) => [r.table, r.identity]));
  const names = { d: 'DEFAULT', n: 'NOTHING', i: 'USING INDEX', f: 'FULL' } as Record<string, string>;
  return tables.map(({ entity, qualified }) => {
    const check = `replica identity ${qualified}`;
    const identity = found.get(entity.table);
    if (identity === undefined) {
      return {
        check,
        status: 'fail',
        detail: `table of entity '${entity.name}' does not exist`,
        fix: 'point HUBFLOW_HUB_URL and HUBFLOW_HUB_SCHEMA at the hub',
      };
    }
    if (identity === 'f') return ok(check, 'FULL');
    return {
      check,
      status: 'fail',
      // Without FULL an UPDATE carries no before-image and an unchanged TOASTed value arrives as
      // "unchanged", which the consumer cannot tell from a value it never saw.
      detail: `is ${names[identity] ?? identity}; changes need complete before-images and unchanged large values`,
      fix: `ALTER TABLE ${qualified} REPLICA IDENTITY FULL;`,
    };
  });
}

async function publication(client: pg.Client, source: CdcSource): Promise<Check> {
  const check = `publication ${source.publication}`;
  const tables = capturedTables(source);
  const { rows: pub } = await client.query('select 1 from pg_publication where pubname = $1', [source.publication]);
  const create = `CREATE PUBLICATION ${source.publication} FOR TABLE ${tables.map((t) => t.qualified).join(', ')}; (or: hubflow cdc setup)`;
  if (!pub.length) return { check, status: 'fail', detail: 'does not exist', fix: create };
  const { rows } = await client.query<{ tablename: string }>('select tablename from pg_publication_tables where pubname = $1 and schemaname = $2', [
    source.publication,
    source.schema,
  ]);
  const covered = new Set(rows.map((r) => r.tablename));
  const missing = tables.filter((t) => !covered.has(t.entity.table));
  if (!missing.length) return ok(check, `covers the ${tables.length} entity tables`);
  return {
    check,
    status: 'fail',
    detail: `does not cover ${missing.map((t) => t.qualified).join(', ')}`,
    fix: `ALTER PUBLICATION ${source.publication} ADD TABLE ${missing.map((t) => t.qualified).join(', ')};`,
  };
}

interface SlotRow {
  plugin: string | null;
  database: string | null;
  here: string;
  wal_status: string | null;
  active: boolean;
  active_pid: number | null;
  lag: string | null;
  retained: string | null;
}

async function slot(client: pg.Client, source: CdcSource): Promise<Check[]> {
  const { rows } = await client.query<SlotRow>(
    `select s.plugin, s.database, current_database() as here, s.wal_status, s.active, s.active_pid,
       (pg_current_wal_lsn() - s.confirmed_flush_lsn)::text as lag, (pg_current_wal_lsn() - s.restart_lsn)::text as retained
     from pg_replication_slots s where s.slot_name = $1`,
    [source.slot],
  );
  const keep = await setting(client, 'max_slot_wal_keep_size');
  const keepCheck: Check =
    keep === '-1'
      ? {
          check: 'max_slot_wal_keep_size',
          status: 'warn',
          detail: 'is -1: a slot nobody consumes keeps WAL until the disk is full',
          fix: 'set max_slot_wal_keep_size (e.g. 2GB) in postgresql.conf and reload; a slot that falls further behind is invalidated and re-seeded instead',
        }
      : ok('max_slot_wal_keep_size', keep);
  const check = `slot ${source.slot}`;
  const s = rows[0];
  if (!s) return [keepCheck, { check, status: 'fail', detail: 'does not exist', fix: 'hubflow cdc setup (creates the slot and takes the initial cut)' }];
  const checks: Check[] = [keepCheck];
  if (s.plugin !== 'pgoutput' || s.database !== s.here) {
    checks.push({
      check,
      status: 'fail',
      detail: `is a ${s.plugin ?? 'physical'} slot of database ${s.database ?? '(none)'}; CDC needs a pgoutput slot of ${s.here}`,
      fix: `SELECT pg_drop_replication_slot('${source.slot}'); then hubflow cdc setup, or name another slot with --slot`,
    });
    return checks;
  }
  if (s.wal_status === 'lost') {
    checks.push({
      check,
      status: 'fail',
      detail: 'is invalidated (wal_status lost): it fell behind by more than max_slot_wal_keep_size, and the changes it held are gone',
      fix: 'hubflow cdc setup --reseed (a new slot and a new initial cut)',
    });
  } else if (s.wal_status === 'unreserved') {
    checks.push({
      check,
      status: 'warn',
      detail: 'wal_status unreserved: it is past max_slot_wal_keep_size and will be invalidated at the next checkpoint unless it catches up',
      fix: 'run the consumer (hubflow cdc run) now',
    });
  } else checks.push(ok(check, `wal_status ${s.wal_status}`));
  checks.push(
    s.active
      ? { check: `${check} in use`, status: 'warn', detail: `a consumer streams from it (pid ${s.active_pid})`, fix: 'none if that is the hubflow cdc process' }
      : ok(`${check} in use`, 'no consumer holds it'),
  );
  checks.push(lagCheck(check, Number(s.lag ?? 0), Number(s.retained ?? 0), keep));
  return checks;
}

const UNITS: Record<string, number> = { kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** max_slot_wal_keep_size as bytes (current_setting writes it with a unit), or null when unlimited. */
function keepBytes(keep: string): number | null {
  const m = /^(\d+)\s*(kB|MB|GB|TB)?$/.exec(keep);
  if (!m || keep === '-1') return null;
  return Number(m[1]) * (UNITS[m[2] ?? 'MB'] ?? 1);
}

function lagCheck(slot: string, lag: number, retained: number, keep: string): Check {
  const check = `${slot} lag`;
  const detail = `${lag} bytes not acknowledged; ${retained} bytes of WAL retained`;
  const cap = keepBytes(keep);
  if (cap !== null && retained > cap * LAG_WARN_SHARE) {
    return {
      check,
      status: 'warn',
      detail: `${detail}, over ${LAG_WARN_SHARE * 100}% of max_slot_wal_keep_size (${keep})`,
      fix: 'run the consumer (hubflow cdc run), or raise max_slot_wal_keep_size',
    };
  }
  return ok(check, detail);
}
