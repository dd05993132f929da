import type { Severity } from 'hubflow';
import type { Warehouse, WarehouseSession } from '../../warehouse/contract.ts';
import type { Entity } from '../../hub/entities.ts';
import { loadRejectedKeys } from './apply.ts';
import type { DeleteCadence, StagedEntity } from './extract.ts';
import { HASH_FIELD, identityFields, ledgerTenant, stagingColumnNames, tracked, type Field, type Scope } from './layout.ts';
import { FAIL_RATE, keyText, SAMPLES, SEVERITY_OF_CLASS, worst, type EntityReconciliation, type FieldMismatch, type ReconcileOptions } from './reconcile.ts';
import { keyFields, keysDdl, onKeys } from './incremental-sql.ts';
import { currentView, LEDGER, stagingDdl } from './sql.ts';

/*
 * The reconciliation of an incremental load, over the whole scope, without a full extract:
 *  - the changed records, field by field, against their current rows;
 *  - the live current rows' count and Σ int60(row_hash) against the ledger's: the last full
 *    snapshot's figures carried forward by each load's delta. A current row altered, lost or
 *    added outside the loads shows as a difference;
 *  - the key sets: the load took as deletes exactly the live keys the hub no longer holds, so
 *    the live keys are a subset of the hub's, and the same count (the hub's keys less today's
 *    rejects never loaded) proves the same set. Only when a figure differs is the hub's key
 *    set (staged, keys only) loaded again and compared both ways, to count and name the keys
 *    missing in the warehouse or in the hub.
 * What it cannot see without reading every row's values in the hub: a warehouse value altered
 * together with its row hash, or in place without it, in a record that did not change. The
 * nightly full snapshot's reconciliation compares every record and catches those.
 */

const num = (v: unknown) => Number(v ?? 0);

/** The ledger's live current count and Σ for the entity and scope as of the load of `snapshotAt` (or the last before it). */
async function carried(s: WarehouseSession, wh: Warehouse, e: Entity, scope: Scope, snapshotAt: string): Promise<{ n: number; sum: string } | null> {
  const d = wh.dialect;
  const [row] = await s.query<{ current_count: unknown; current_sum: string | null }>(
    `select current_count, current_sum from ${wh.table(LEDGER)}
     where entity = ${d.text(e.name)} and tenant_id = ${d.text(ledgerTenant(scope))} and snapshot_at <= ${d.timestamp(snapshotAt)}
     order by snapshot_at desc limit 1`,
  );
  return row && row.current_sum !== null ? { n: num(row.current_count), sum: String(row.current_sum) } : null;
}

export async function reconcileChanges(opts: ReconcileOptions & { snapshotAt: string; deletes?: DeleteCadence }): Promise<EntityReconciliation[]> {
  const { warehouse: wh, scope } = opts;
  const tag = opts.attempt.replace(/[^a-z0-9]/gi, '_').toLowerCase();
  return wh.session(async (s) => {
    const out: EntityReconciliation[] = [];
    for (const st of opts.staged) {
      const e = opts.entities[st.entity];
      if (!e || st.file === null || (!st.keys && st.hubCount === undefined)) continue;
      const hubCount = st.hubCount ?? st.keys!.count;
      const table = s.dialect.id(`rec_${e.name}_${tag}`.slice(0, 63));
      await s.query(stagingDdl(s.dialect, table, e));
      const staged = await s.load(table, stagingColumnNames(e), st.file, `${opts.attempt}/reconcile/${e.name}`);
      const rejected = await loadRejectedKeys(s, e, st, {
        name: `rrj_${e.name}_${tag}`,
        attempt: `${opts.attempt}/reconcile/${e.name}-rejected`,
        scope,
        unless: 'nothing was reconciled',
      });
      const expected = await carried(s, wh, e, scope, opts.snapshotAt);
      const totals = await liveTotals(s, wh, e, scope, rejected);
      // Every hub insert arrived as a changed row, and the load took as deletes the live keys
      // the hub no longer holds (when the counts said there were any), so equal counts (less
      // today's rejects never loaded) mean equal sets. Only when they differ is the key set, when
      // staged, loaded again, to name the keys; without one ('nightly') the difference is counted.
      const keysAgree = expected !== null && totals.n === hubCount - totals.rejectedUnloaded && totals.sum === expected.sum && totals.n === expected.n;
      const keys =
        keysAgree || !st.keys
          ? null
          : await compareKeys(s, wh, e, scope, st.keys, rejected, `${opts.attempt}/reconcile/${e.name}-keys`, `rky_${e.name}_${tag}`);
      const counted = { hubCount, extra: totals.n - (hubCount - totals.rejectedUnloaded), nightly: opts.deletes === 'nightly' };
      out.push(await compareChanges(s, wh, e, scope, st, { table, staged, rejected, expected, totals, keys, counted }));
    }
    return out;
  });
}

interface Totals {
  n: number;
  sum: string;
  /** Keys rejected today that have no live current row: the hub holds them, the warehouse never did. */
  rejectedUnloaded: number;
}

interface KeyComparison {
  hubKeys: number;
  missingInTarget: number;
  missingInSource: number;
  samples: { missingInTarget: string[]; missingInSource: string[] };
}

const currentOf = (wh: Warehouse, e: Entity, scope: Scope) =>
  `(select * from ${wh.table(currentView(e))} v${e.tenantColumn && scope !== null ? ` where v.tenant_id = ${wh.dialect.text(scope)}` : ''})`;

const onIds = (s: WarehouseSession, e: Entity, a: string, b: string) =>
  identityFields(e)
    .map((f) => `${a}.${s.dialect.id(f.name)} = ${b}.${s.dialect.id(f.name)}`)
    .join(' and ');

/** The scope's live current rows: count and Σ int60(row_hash). */
async function liveTotals(s: WarehouseSession, wh: Warehouse, e: Entity, scope: Scope, rejected: string | null): Promise<Totals> {
  const d = s.dialect;
  const last = d.id(identityFields(e).at(-1)!.name);
  const [row] = await s.query<{ n: unknown; s: unknown }>(
    `select count(*) as n, cast(coalesce(sum(${d.int60(`c.${HASH_FIELD}`)}), 0) as text) as s from ${currentOf(wh, e, scope)} c`,
  );
  const [unloaded] = rejected
    ? await s.query<{ n: unknown }>(
        `select count(*) as n from (select distinct * from ${rejected}) r left join ${currentOf(wh, e, scope)} c on ${onIds(s, e, 'r', 'c')} where c.${last} is null`,
      )
    : [{ n: 0 }];
  return { n: num(row?.n), sum: String(row?.s ?? '0'), rejectedUnloaded: num(unloaded?.n) };
}

/** The hub's key set against the live current rows' keys, both ways, with samples. */
async function compareKeys(
  s: WarehouseSession,
  wh: Warehouse,
  e: Entity,
  scope: Scope,
  file: { file: string; count: number },
  rejected: string | null,
  attempt: string,
  name: string,
): Promise<KeyComparison> {
  const d = s.dialect;
  const ids = identityFields(e);
  const last = d.id(ids.at(-1)!.name);
  const keys = d.id(name.slice(0, 63));
  await s.query(keysDdl(d, keys, e));
  const hubKeys = await s.load(
    keys,
    keyFields(e).map((f) => f.name),
    file.file,
    attempt,
  );
  const names = ids.map((f) => d.id(f.name)).join(', ');
  // A key rejected today and never loaded is not missing: it is counted as rejected.
  const rejectedJoin = rejected ? ` left join (select distinct ${names} from ${rejected}) r on ${onKeys(d, e, 'k', 'r')}` : '';
  const from = `from (select distinct ${keyFields(e)
    .map((f) => d.id(f.name))
    .join(', ')} from ${keys}) k full join ${currentOf(wh, e, scope)} c on ${onKeys(d, e, 'k', 'c')}${rejectedJoin}`;
  const targetMissing = `c.${last} is null${rejected ? ` and r.${last} is null` : ''}`;
  const [row] = await s.query<Record<string, unknown>>(
    `select sum(case when ${targetMissing} then 1 else 0 end) as missing_in_target, sum(case when k.${last} is null then 1 else 0 end) as missing_in_source ${from}`,
  );
  const sample = async (n: number, alias: string, where: string) =>
    n ? (await s.query<{ k: unknown }>(`select ${keyText(s, e, alias)} as k ${from} where ${where} order by 1 limit ${SAMPLES}`)).map((x) => String(x.k)) : [];
  const missingInTarget = num(row?.missing_in_target);
  const missingInSource = num(row?.missing_in_source);
  return {
    hubKeys,
    missingInTarget,
    missingInSource,
    samples: { missingInTarget: await sample(missingInTarget, 'k', targetMissing), missingInSource: await sample(missingInSource, 'c', `k.${last} is null`) },
  };
}

async function compareChanges(
  s: WarehouseSession,
  wh: Warehouse,
  e: Entity,
  scope: Scope,
  st: StagedEntity,
  t: {
    table: string;
    staged: number;
    rejected: string | null;
    expected: { n: number; sum: string } | null;
    totals: Totals;
    keys: KeyComparison | null;
    /** The live rows beyond the hub's (negative: fewer), by count, for a scope whose key set was not compared. */
    counted: { hubCount: number; extra: number; nightly: boolean };
  },
): Promise<EntityReconciliation> {
  const d = s.dialect;
  const fields = tracked(e);
  const differs = (f: Field) => `s.${d.id(f.name)} is distinct from c.${d.id(f.name)}`;
  const anyDiffers = [...fields.map(differs), `s.${HASH_FIELD} <> c.${HASH_FIELD}`].join(' or ');
  const from = `from ${t.table} s join ${currentOf(wh, e, scope)} c on ${onIds(s, e, 's', 'c')}`;
  const [r] = await s.query<Record<string, unknown>>(
    `select count(*) as paired, sum(case when ${anyDiffers} then 1 else 0 end) as mismatched,
  ${fields.map((f, i) => `sum(case when ${differs(f)} then 1 else 0 end) as f${i}`).join(',\n  ')}
${from}`,
  );
  const fieldMismatches: FieldMismatch[] = [];
  for (const [i, f] of fields.entries()) {
    const mismatched = num(r?.[`f${i}`]);
    if (!mismatched) continue;
    const keys = await s.query<{ k: unknown }>(`select ${keyText(s, e, 's')} as k ${from} where ${differs(f)} order by 1 limit ${SAMPLES}`);
    fieldMismatches.push({ field: f.name, fieldClass: f.class, severity: SEVERITY_OF_CLASS[f.class], mismatched, sampleKeys: keys.map((x) => String(x.k)) });
  }
  // Without a key set the count difference stands for the keys: live rows beyond the hub's are
  // the deletes a 'nightly' cadence leaves to the full snapshot (pending, reported, never matched);
  // otherwise, and always when the warehouse holds fewer, records missing on one side, unnamed.
  const extra = t.keys ? 0 : t.counted.extra;
  const pendingDeletes = extra > 0 && t.counted.nightly ? extra : 0;
  const missingInTarget = t.keys?.missingInTarget ?? Math.max(-extra, 0);
  const missingInSource = t.keys?.missingInSource ?? (pendingDeletes ? 0 : Math.max(extra, 0));
  const hubKeys = t.keys?.hubKeys ?? t.counted.hubCount;
  const mismatched = num(r?.mismatched);
  const differing = missingInTarget + missingInSource + mismatched;
  const mismatchRate = (differing + st.rejected) / Math.max(hubKeys, 1);
  let severity: Severity = missingInTarget + missingInSource > 0 ? 'critical' : pendingDeletes ? 'low' : 'none';
  for (const f of fieldMismatches) severity = worst(severity, f.severity);
  // Without the ledger's figures (a ledger from before they were kept) the totals prove nothing: failed, so the scope is loaded whole.
  const sumsAgree =
    t.staged === st.staged &&
    hubKeys === (st.keys?.count ?? t.counted.hubCount) &&
    t.expected !== null &&
    t.totals.n === t.expected.n &&
    t.totals.sum === t.expected.sum;
  if (!differing && !sumsAgree) severity = 'critical';
  const status = mismatchRate > FAIL_RATE || (!differing && !sumsAgree) ? 'failed' : severity === 'critical' ? 'escalated' : 'ok';
  return {
    entity: e.name,
    tenant: ledgerTenant(scope),
    sourceCount: hubKeys,
    sourceSum: t.expected?.sum ?? '0',
    rejected: st.rejected,
    stagedCount: t.staged,
    currentCount: t.totals.n,
    currentSum: t.totals.sum,
    matched: num(r?.paired) - mismatched,
    mismatched,
    missingInTarget,
    missingInSource,
    mismatchRate,
    severity,
    status,
    fields: fieldMismatches,
    ...(pendingDeletes ? { pendingDeletes } : {}),
    samples: t.keys?.samples ?? { missingInTarget: [], missingInSource: [] },
  };
}
