import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mutateHub, type MutateResult } from '../../demo/mutate.ts';
import { seedHub } from '../../demo/seed.ts';
import { validateNationalId } from '../../demo/identifiers.ts';
import { tableDigests, testHub } from './hub-support.ts';

const hub = testHub();
const db = hub.db;
const [a, b, c] = [hub.schema('a'), hub.schema('b'), hub.schema('c')];
const AT = new Date('2026-03-10T00:00:00Z');
let ra: MutateResult;
let rb: MutateResult;
let digestsBefore: Record<string, string>;

beforeAll(async () => {
  for (const s of [a, b, c]) await seedHub(db, s, { tenants: 3, workers: 2_000, seed: 11 });
  digestsBefore = await tableDigests(db, a);
  ra = await mutateHub(db, a, { seed: 5, rate: 0.01, at: AT });
  rb = await mutateHub(db, b, { seed: 5, rate: 0.01, at: AT });
});
afterAll(() => hub.close());

const rows = async <T>(query: string) => (await sql.raw<T>(query).execute(db)).rows;
const counts = (r: MutateResult) => ({ ...r, seconds: 0 });

describe('mutateHub', () => {
  it('changes about rate of the workers, with every kind of change', () => {
    const total = ra.updated + ra.hired + ra.terminated + ra.deleted;
    expect(ra.workersBefore).toBe(2_000);
    expect(total).toBeGreaterThanOrEqual(15);
    expect(total).toBeLessThanOrEqual(25);
    expect(ra.updated).toBeGreaterThan(0);
    expect(ra.hired).toBeGreaterThan(0);
    expect(ra.terminated).toBeGreaterThan(0);
    expect(ra.deleted).toBeGreaterThan(0);
    expect(ra.deleted).toBeLessThan(ra.updated);
    expect(Object.values(ra.byField).reduce((s, n) => s + n, 0)).toBe(ra.updated);
    expect(ra.day).toBe('2026-03-10');
  });

  it('is deterministic for a seed and day', async () => {
    expect(counts(rb)).toEqual(counts(ra));
    expect(await tableDigests(db, b)).toEqual(await tableDigests(db, a));
    expect(await tableDigests(db, a)).not.toEqual(digestsBefore);
  });

  it('another seed changes other workers', async () => {
    await mutateHub(db, c, { seed: 6, rate: 0.01, at: AT });
    const [diff] = await rows<{ n: number }>(`
      select count(*)::int as n from (select worker_id from ${a}.workers where updated_at >= '2026-03-10'
        except select worker_id from ${c}.workers where updated_at >= '2026-03-10') x`);
    expect(diff!.n).toBeGreaterThan(0);
  });

  it('writes what it reports, stamped inside the day', async () => {
    const [w] = await rows<{ total: number; hired: number; terminated: number; today: number; outside: number }>(`
      select count(*)::int as total,
        count(*) filter (where worker_id > 'W000002000')::int as hired,
        count(*) filter (where termination_date = '2026-03-10' and status = 'terminated')::int as terminated,
        count(*) filter (where updated_at >= '2026-03-10' and updated_at < '2026-03-11')::int as today,
        count(*) filter (where updated_at >= '2026-01-01' and not (updated_at >= '2026-03-10' and updated_at < '2026-03-11'))::int as outside
      from ${a}.workers`);
    expect(w!.total).toBe(2_000 + ra.hired - ra.deleted);
    expect(w!.hired).toBe(ra.hired);
    expect(w!.terminated).toBe(ra.terminated);
    expect(w!.outside).toBe(0);
    // Salary changes touch the contract only; every other change stamps the worker.
    expect(w!.today).toBe(ra.hired + ra.terminated + ra.updated - ra.byField.salary);
    const [k] = await rows<{ today: number; orphans: number; ended: number }>(`
      select count(*) filter (where updated_at >= '2026-03-10')::int as today,
        (select count(*)::int from ${a}.contracts k where not exists (select 1 from ${a}.workers w where w.tenant_id = k.tenant_id and w.worker_id = k.worker_id))
          + (select count(*)::int from ${a}.payroll_results p where not exists (select 1 from ${a}.workers w where w.tenant_id = p.tenant_id and w.worker_id = p.worker_id)) as orphans,
        count(*) filter (where end_date = '2026-03-10')::int as ended
      from ${a}.contracts`);
    expect(k!.today).toBe(ra.hired + ra.terminated + ra.byField.salary);
    expect(k!.orphans).toBe(0);
    expect(k!.ended).toBe(ra.terminated);
  });

  it('hires valid workers with fresh ids that start after the day', async () => {
    const hires = await rows<{ worker_id: string; national_id_type: string; national_id: string; hire_date: string; contract_id: string; start_date: string }>(`
      select w.worker_id, w.national_id_type, w.national_id, w.hire_date::text, k.contract_id, k.start_date::text
      from ${a}.workers w join ${a}.contracts k using (tenant_id, worker_id) where w.worker_id > 'W000002000' order by 1`);
    expect(hires).toHaveLength(ra.hired);
    for (const h of hires) {
      expect(validateNationalId(h.national_id_type, h.national_id)).toBeNull();
      expect(h.hire_date > '2026-03-10').toBe(true);
      expect(h.start_date).toBe(h.hire_date);
      expect(h.contract_id > 'K000002000').toBe(true);
    }
  });

  it('a rate of 0 changes nothing; a bad rate is refused', async () => {
    const before = await tableDigests(db, b);
    const none = await mutateHub(db, b, { seed: 9, rate: 0 });
    expect(none.updated + none.hired + none.terminated + none.deleted).toBe(0);
    expect(await tableDigests(db, b)).toEqual(before);
    await expect(mutateHub(db, b, { seed: 9, rate: 2 })).rejects.toThrow(/rate/);
  });
});
