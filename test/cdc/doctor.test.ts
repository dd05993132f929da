import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor, type DoctorReport } from '../../cdc/doctor.ts';
import { execSql, startPrivatePostgres, type PrivatePostgres } from './private-pg.ts';
import { hubflow, seedDemoHub, sourceOf } from './support.ts';

let pgs: PrivatePostgres;
beforeAll(async () => {
  pgs = await startPrivatePostgres({ wal_level: 'logical', max_slot_wal_keep_size: '64MB' });
  await seedDemoHub(pgs.url);
});
afterAll(async () => {
  await pgs?.stop();
});

const statusOf = (report: DoctorReport, check: string) => report.checks.find((c) => c.check === check)?.status;

describe('hubflow cdc doctor', () => {
  it('fails on a hub not yet prepared, saying what to change for each failed check', () => {
    const { status, stdout } = hubflow({ HUBFLOW_HUB_URL: pgs.url, HUBFLOW_DATABASE_URL: pgs.url }, 'cdc', 'doctor', '--json');
    expect(status).toBe(1);
    const report = JSON.parse(stdout) as DoctorReport;
    expect(report.ok).toBe(false);
    expect(statusOf(report, 'wal_level')).toBe('ok');
    expect(statusOf(report, 'replication role')).toBe('ok');
    expect(report.checks.find((c) => c.check === 'replica identity hub.workers')).toMatchObject({
      status: 'fail',
      fix: 'ALTER TABLE hub.workers REPLICA IDENTITY FULL;',
    });
    expect(report.checks.find((c) => c.check === 'publication hubflow_pub')?.fix).toMatch(
      /^CREATE PUBLICATION hubflow_pub FOR TABLE hub.countries, .*hub.workers/,
    );
    expect(report.checks.find((c) => c.check === 'slot hubflow_cdc')).toMatchObject({ status: 'fail', fix: expect.stringContaining('hubflow cdc setup') });
    expect(statusOf(report, 'max_slot_wal_keep_size')).toBe('ok');
  });

  it('passes once replica identity, publication and slot are there, and reports the slot lag', async () => {
    const source = sourceOf(pgs.url);
    await execSql(
      pgs.url,
      ...Object.values(source.entities).map((e) => `alter table hub.${e.table} replica identity full`),
      `create publication hubflow_pub for table ${Object.values(source.entities)
        .map((e) => `hub.${e.table}`)
        .join(', ')}`,
      `select pg_create_logical_replication_slot('hubflow_cdc', 'pgoutput')`,
    );
    const { status, stdout } = hubflow({ HUBFLOW_HUB_URL: pgs.url, HUBFLOW_DATABASE_URL: pgs.url }, 'cdc', 'doctor');
    expect(status).toBe(0);
    expect(stdout).toMatch(/slot hubflow_cdc\s+ok\s+wal_status reserved/);
    expect(stdout).toMatch(/slot hubflow_cdc lag\s+ok\s+\d+ bytes not acknowledged/);
    expect(stdout).not.toMatch(/to change:/);
  });

  it('fails for a role without the REPLICATION attribute and a table left out of the publication', async () => {
    await execSql(
      pgs.url,
      'create role plain login password $$plain$$',
      'grant usage on schema hub to plain',
      'alter publication hubflow_pub drop table hub.contracts',
    );
    try {
      const report = await runDoctor(sourceOf(pgs.url.replace('postgres:cdc-test@', 'plain:plain@')));
      expect(report.checks.find((c) => c.check === 'replication role')).toMatchObject({
        status: 'fail',
        fix: 'ALTER ROLE "plain" WITH REPLICATION; (RDS/Aurora: GRANT rds_replication TO "plain";)',
      });
      expect(report.checks.find((c) => c.check === 'publication hubflow_pub')).toMatchObject({
        status: 'fail',
        fix: 'ALTER PUBLICATION hubflow_pub ADD TABLE hub.contracts;',
      });
    } finally {
      await execSql(pgs.url, 'alter publication hubflow_pub add table hub.contracts', 'drop owned by plain', 'drop role plain');
    }
  });

  it('fails on a server without wal_level = logical, and warns when slots may keep WAL without limit', async () => {
    const replica = await startPrivatePostgres({ wal_level: 'replica' });
    try {
      await seedDemoHub(replica.url, { workers: 5, fullIdentity: true });
      const report = await runDoctor(sourceOf(replica.url));
      expect(report.ok).toBe(false);
      expect(report.checks.find((c) => c.check === 'wal_level')).toMatchObject({ status: 'fail', detail: expect.stringContaining("is 'replica'") });
      expect(report.checks.find((c) => c.check === 'wal_level')?.fix).toMatch(/wal_level = logical .* restart/);
      expect(statusOf(report, 'max_slot_wal_keep_size')).toBe('warn');
    } finally {
      await replica.stop();
    }
  });
});
