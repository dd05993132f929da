import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openHub, type HubDb } from '../../hub/db.ts';
import { HUB_ENTITIES, parseEntities } from '../../hub/entities.ts';
import { seedHub } from '../../demo/seed.ts';
import { extractScope, type Reject } from '../../tasks/history/extract.ts';
import { rowHash } from '../../transforms/row-hash.ts';
import { TEST_DATABASE_URL } from '../support.ts';

let hub: HubDb;
let dir: string;
const schema = `x_${Math.random().toString(36).slice(2, 10)}`;

beforeAll(async () => {
  hub = openHub(TEST_DATABASE_URL);
  dir = await mkdtemp(path.join(os.tmpdir(), 'hubflow-extract-'));
  await seedHub(hub, schema, { tenants: 2, workers: 200, seed: 4 });
});

afterAll(async () => {
  await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(hub);
  await hub.destroy();
  await rm(dir, { recursive: true, force: true });
});

/** COPY text back to values: what the hub held, escapes undone. */
function decodeField(field: string): string | null {
  if (field === '\\N') return null;
  return field.replace(/\\(.)/g, (_, c: string) => ({ t: '\t', n: '\n', r: '\r', b: '\b', f: '\f', v: '\v' })[c] ?? c);
}

describe('the hub extract', () => {
  it('stages every row with the hash of its tracked values, whatever they hold, and sums the hashes exactly', async () => {
    const [{ tenant_id: tenant, worker_id: id }] = (
      await sql<{ tenant_id: string; worker_id: string }>`select tenant_id, worker_id from ${sql.raw(`${schema}.workers`)} order by 1, 2 limit 1`.execute(hub)
    ).rows as [{ tenant_id: string; worker_id: string }];
    // Separators, escapes and control characters inside values must not shift or merge fields.
    await sql`update ${sql.raw(`${schema}.workers`)} set address_line1 = ${'Flat 2\t"B"\\ Main\nStreet\r\v'}, address_line2 = '' where tenant_id = ${tenant} and worker_id = ${id}`.execute(
      hub,
    );
    for (const compression of ['none', 'gzip', 'brotli'] as const) {
      const result = await extractScope({
        hub,
        schema,
        entities: HUB_ENTITIES,
        scope: tenant,
        dir: path.join(dir, compression),
        onRejects: async () => undefined,
        compression,
      });
      const workers = result.entities.find((e) => e.entity === 'workers')!;
      const raw = await readFile(workers.file!);
      const text = (compression === 'none' ? raw : compression === 'gzip' ? gunzipSync(raw) : brotliDecompressSync(raw)).toString('utf8');
      const lines = text.trimEnd().split('\n');
      expect(lines).toHaveLength(workers.staged);
      let sum = 0n;
      for (const line of lines) {
        const fields = line.split('\t');
        // tenant, key, 18 tracked fields, change time, hash
        expect(fields).toHaveLength(22);
        const tracked = fields.slice(2, 20).map(decodeField);
        expect(fields[21], line).toBe(rowHash(tracked));
        sum += BigInt(`0x${fields[21]!.slice(0, 15)}`);
      }
      expect(workers.sum).toBe(sum.toString());
      const planted = lines
        .find((l) => l.startsWith(`${tenant}\t${id}\t`))!
        .split('\t')
        .map(decodeField);
      expect(planted.slice(8, 10)).toEqual(['Flat 2\t"B"\\ Main\nStreet\r\v', '']);
      expect(workers.extracted).toBe(workers.staged + workers.rejected);
    }
  });

  it('rejects rows whose values break their configured type, with the field and the reason; extracted = staged + rejected', async () => {
    // A real hub with looser types than the configuration says: hire dates held as text.
    await sql`create table ${sql.raw(`${schema}.people`)} (tenant_id text not null, person_id text not null, name text, hired text, updated_at timestamptz not null default now(), primary key (tenant_id, person_id))`.execute(
      hub,
    );
    await sql`insert into ${sql.raw(`${schema}.people`)} (tenant_id, person_id, name, hired) values ('t1', 'P1', 'Ann', '2024-02-29'), ('t1', 'P2', 'Bob', '31/02/2024'), ('t1', 'P3', 'Cy', null), ('t1', 'P4', 'Di', '2023-02-29')`.execute(
      hub,
    );
    const entities = parseEntities({
      people: {
        name: 'people',
        table: 'people',
        key: ['person_id'],
        tenantScoped: true,
        tenantColumn: 'tenant_id',
        updatedAtColumn: 'updated_at',
        columns: {
          person_id: { type: 'text', class: 'operational' },
          name: { type: 'text', class: 'pii', nullable: true },
          hired: { type: 'date', class: 'operational', nullable: true },
        },
      },
    });
    const rejects: Reject[] = [];
    const result = await extractScope({ hub, schema, entities, scope: 't1', dir: path.join(dir, 'people'), onRejects: async (r) => void rejects.push(...r) });
    expect(result.entities[0]).toMatchObject({ extracted: 4, staged: 2, rejected: 2 });
    expect(rejects.map((r) => [r.tenant, r.key, r.field, r.rule, r.reason])).toEqual([
      ['t1', 'P2', 'hired', 'type', "hired: '31/02/2024' is not a valid date"],
      ['t1', 'P4', 'hired', 'type', "hired: '2023-02-29' is not a valid date"],
    ]);
  });
  it('rejects rows the hub marks (null key, null required value, too long, outside the enumeration) and stages the keys it can', async () => {
    // No primary key: a real hub can hold a row without its key.
    await sql`create table ${sql.raw(`${schema}.things`)} (tenant_id text not null, thing_id text, kind text, label text, updated_at timestamptz not null default now())`.execute(
      hub,
    );
    await sql`insert into ${sql.raw(`${schema}.things`)} (tenant_id, thing_id, kind, label) values
      ('t1', 'A1', 'big', 'fine'), ('t1', null, 'big', 'x'), ('t1', 'A3', 'huge', 'x'), ('t1', 'A4', 'big', 'toolong'), ('t1', 'A5', 'small', null), ('t2', 'B1', 'nope', 'x')`.execute(
      hub,
    );
    const entities = parseEntities({
      things: {
        name: 'things',
        table: 'things',
        key: ['thing_id'],
        tenantScoped: true,
        tenantColumn: 'tenant_id',
        updatedAtColumn: 'updated_at',
        columns: {
          thing_id: { type: 'text', class: 'operational' },
          kind: { type: 'text', class: 'operational', values: ['big', 'small'] },
          label: { type: 'text', class: 'financial', maxLength: 5 },
        },
      },
    });
    const rejects: Reject[] = [];
    const result = await extractScope({
      hub,
      schema,
      entities,
      scope: 't1',
      dir: path.join(dir, 'things'),
      onRejects: async (r) => void rejects.push(...r),
      compression: 'none',
    });
    const things = result.entities[0]!;
    expect(things).toMatchObject({ extracted: 5, staged: 1, rejected: 4 });
    expect(rejects.map((r) => [r.tenant, r.key, r.field, r.rule, r.reason])).toEqual([
      ['t1', '', 'thing_id', 'key', 'thing_id: key missing (null), the row cannot be placed in history'],
      ['t1', 'A3', 'kind', 'enum', "kind: 'huge' is not one of big, small"],
      ['t1', 'A4', 'label', 'max_length', "label: 'to••••g' has 7 characters, more than the 5 allowed"],
      ['t1', 'A5', 'label', 'not_null', 'label: missing (null), the contract requires a value'],
    ]);
    expect(rejects[2]!.raw).toContain('toolong');
    // The keys the warehouse may hold from an earlier load: the load leaves them as they were.
    expect(things.rejectedKeys?.count).toBe(3);
    expect(await readFile(things.rejectedKeys!.file, 'utf8')).toBe('t1\tA3\nt1\tA4\nt1\tA5\n');
  });

  it('refuses to extract a tenant whose id breaks the tenant-id rule, and makes no folder for it', async () => {
    const folder = path.join(dir, 'bad', '..');
    await expect(extractScope({ hub, schema, entities: HUB_ENTITIES, scope: '..', dir: folder, onRejects: async () => undefined })).rejects.toMatchObject({
      name: 'InvalidTenantIdError',
      message: expect.stringMatching(/tenant id "\.\." is not .*rejected by the global scope/),
    });
    await expect(readFile(path.join(dir, 'bad'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
  it('checks values of hub types wider than the contract (bigint, unconstrained numeric, text timestamps), so one bad value never fails the load', async () => {
    await sql`create table ${sql.raw(`${schema}.meters`)} (meter_id text primary key, n bigint, amount numeric, seen text, updated_at timestamptz not null default now())`.execute(
      hub,
    );
    await sql`insert into ${sql.raw(`${schema}.meters`)} (meter_id, n, amount, seen) values
      ('M1', 7, 12.5, '2024-03-07 10:00:00+00'), ('M2', 3000000000, 1, null), ('M3', 1, 1.234, null), ('M4', 1, 1, '2024-02-30 10:00:00+00')`.execute(hub);
    const entities = parseEntities({
      meters: {
        name: 'meters',
        table: 'meters',
        key: ['meter_id'],
        tenantScoped: false,
        tenantColumn: null,
        updatedAtColumn: 'updated_at',
        columns: {
          meter_id: { type: 'text', class: 'operational' },
          n: { type: 'integer', class: 'operational' },
          amount: { type: 'numeric', class: 'financial' },
          seen: { type: 'timestamptz', class: 'operational', nullable: true },
        },
      },
    });
    const rejects: Reject[] = [];
    const result = await extractScope({ hub, schema, entities, scope: null, dir: path.join(dir, 'meters'), onRejects: async (r) => void rejects.push(...r) });
    expect(result.entities[0]).toMatchObject({ extracted: 4, staged: 1, rejected: 3 });
    expect(rejects.map((r) => [r.key, r.field, r.rule, r.reason])).toEqual([
      ['M2', 'n', 'type', "n: '3000000000' is not a valid integer"],
      ['M3', 'amount', 'type', "amount: '•••••' is not a valid numeric"],
      ['M4', 'seen', 'type', "seen: '2024-02-30 10:00:00+00' is not a valid timestamptz"],
    ]);
  });
});
