import { chmod, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openHub, type HubDb } from '../../hub/db.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { seedHub } from '../../demo/seed.ts';
import { extractScope } from '../../tasks/history/extract.ts';
import { markSnapshot } from '../../tasks/history/snapshots.ts';
import { TEST_DATABASE_URL } from '../support.ts';
import { historyHarness, runNight } from './support.ts';

/** Staged snapshots hold national ids, IBANs and birth dates: 0600 files in 0700 folders, whatever the umask. */

let hub: HubDb;
let root: string;
let umask: number;
const schema = `xp_${Math.random().toString(36).slice(2, 10)}`;

beforeAll(async () => {
  umask = process.umask(0);
  hub = openHub(TEST_DATABASE_URL);
  root = await mkdtemp(path.join(os.tmpdir(), 'hubflow-private-'));
  await seedHub(hub, schema, { tenants: 1, workers: 60, seed: 5 });
});

afterAll(async () => {
  process.umask(umask);
  await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(hub);
  await hub.destroy();
  await rm(root, { recursive: true, force: true });
});

describe('history staging', () => {
  it('writes every staged file 0600 in folders it creates 0700', async () => {
    const [{ tenant_id: tenant }] = (await sql<{ tenant_id: string }>`select min(tenant_id) as tenant_id from ${sql.id(schema, 'workers')}`.execute(hub))
      .rows as [{ tenant_id: string }];
    const staging = path.join(root, 'staging');
    const dir = path.join(staging, 'hub-nightly', 'run-1', tenant);
    const result = await extractScope({ hub, schema, entities: HUB_ENTITIES, scope: tenant, dir, onRejects: async () => undefined, compression: 'none' });
    await markSnapshot(dir, 1, result.snapshotAt);

    const modes = new Map<string, number>();
    for (const entry of ['', ...(await readdir(staging, { recursive: true }))]) modes.set(entry, (await stat(path.join(staging, entry))).mode & 0o777);
    expect(modes.get(path.join('hub-nightly', 'run-1', tenant, 'workers.tsv'))).toBe(0o600);
    expect([...modes].filter(([, mode]) => mode !== 0o600 && mode !== 0o700)).toEqual([]);
  });
});

describe('a nightly run', () => {
  it('tightens a staging folder an earlier version left 0755 before staging into it', async () => {
    const h = await historyHarness({ tenants: 1, workers: 60 });
    try {
      await chmod(h.staging, 0o755);
      expect((await runNight(h, '2026-03-02')).state).toBe('success');
      const modes = new Map<string, number>();
      for (const entry of ['', ...(await readdir(h.staging, { recursive: true }))]) modes.set(entry, (await stat(path.join(h.staging, entry))).mode & 0o777);
      expect(modes.get('')).toBe(0o700);
      expect([...modes].filter(([, mode]) => mode !== 0o600 && mode !== 0o700)).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
