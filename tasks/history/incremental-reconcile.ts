import type { Severity } from 'hubflow';
import type { Warehouse, WarehouseSession } from '../../warehouse/contract.ts';
import type { Entity } from '../../hub/entities.ts';
import { loadRejectedKeys } from './apply.ts';
import type { StagedEntity } from './extract.ts';
import { HASH_FIELD, identityFields, ledgerTenant, stagingColumnNames, tracked, type Field, type Scope } from './layout.ts';
import { FAIL_RATE, keyText, SAMPLES, SEVERITY_OF_CLASS, worst, type EntityReconciliation, type FieldMismatch, type ReconcileOptions } from './reconcile.ts';
import { currentView, LEDGER, rejectedKeysDdl, stagingDdl } from './sql.ts';

/*
 * The reconciliation of an incremental load, over the whole scope, without a full extract:
 *  - the key sets: every key the hub holds in the scope (staged keys only) against every live
 *    current row's key, both ways: missing in the warehouse, missing in the hub;
 *  - the changed records, field by field, against their current rows;
 *  - the live current rows' count and Σ int60(row_hash) (counted in the same pass as the key
 *    comparison) against the ledger's: the last full snapshot's figures carried forward by each
 *    load's delta. A current row altered or lost outside the loads shows as a difference.
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

export async function reconcileChanges(opts: ReconcileOptions & { snapshotAt: string }): Promise<EntityReconciliation[]> {
  const { warehouse: wh, scope } = opts;
  const tag = opts.attempt.replace(/[^a-z0-9]/gi, '_').toLowerCase();
  return wh.session(async (s) => {
    const out: EntityReconciliation[] = [];
    for (const st of opts.staged) {
      const e = opts.entities[st.entity];
      if (!e || st.file === null || !st.keys) continue;
      const table = s.dialect.id(`rec_${e.name}_${tag}`.slice(0, 63));
      await s.query(stagingDdl(s.dialect, table, e));
      const staged = await s.load(table, stagingColumnNames(e), st.file, `${opts.attempt}/reconcile/${e.name}`);
      const keys = s.dialect.id(`rky_${e.name}_${tag}`.slice(0, 63));
      await s.query(rejectedKeysDdl(s.dialect, keys, e));
      const hubKeys = await s.load(
        keys,
        identityFields(e).map((f) => f.name),
        st.keys.file,
        `${opts.attempt}/reconcile/${e.name}-keys`,
      );
      const rejected = await loadRejectedKeys(s, e, st, {
        name: `rrj_${e.name}_${tag}`,
        attempt: `${opts.attempt}/reconcile/${e.name}-rejected`,
        scope,
        unless: 'nothing was reconciled',
      });
      const expected = await carried(s, wh, e, scope, opts.snapshotAt);
      out.push(await compareChanges(s, wh, e, scope, st, { table, staged, keys, hubKeys, rejected, expected }));
    }
    return out;
  });
}

async function compareChanges(
  s: WarehouseSession,
  wh: Warehouse,
  e: Entity,
  scope: Scope,
  st: StagedEntity,
  t: { table: string; staged: number; keys: string; hubKeys: number; rejected: string | null; expected: { n: number; sum: string } | null },
): Promise<EntityReconciliation> {
  const d = s.dialect;
  const ids = identityFields(e);
  const last = d.id(ids[ids.length - 1]!.name);
  const on = (a: string, b: string) => ids.map((f) => `${a}.${d.id(f.name)} = ${b}.${d.id(f.name)}`).join(' and ');
  const current = `(select * from ${wh.table(currentView(e))} v${e.tenantColumn && scope !== null ? ` where v.tenant_id = ${d.text(scope)}` : ''})`;
  // Keys both ways, and the whole scope's live totals in the same pass. A key rejected today
  // and never loaded is not missing: it is counted as rejected.
  const rejectedJoin = t.rejected ? ` left join (select distinct ${ids.map((f) => d.id(f.name)).join(', ')} from ${t.rejected}) r on ${on('r', 'k')}` : '';
  const keysFrom = `from (select distinct ${ids.map((f) => d.id(f.name)).join(', ')} from ${t.keys}) k full join ${current} c on ${on('k', 'c')}${rejectedJoin}`;
  const targetMissing = `c.${last} is null${t.rejected ? ` and r.${last} is null` : ''}`;
  const [k] = await s.query<Record<string, unknown>>(
    `select sum(case when ${targetMissing} then 1 else 0 end) as missing_in_target, sum(case when k.${last} is null then 1 else 0 end) as missing_in_source,
  count(c.${last}) as n, cast(coalesce(sum(${d.int60(`c.${HASH_FIELD}`)}), 0) as text) as s
${keysFrom}`,
  );
  const fields = tracked(e);
  const differs = (f: Field) => `s.${d.id(f.name)} is distinct from c.${d.id(f.name)}`;
  const anyDiffers = [...fields.map(differs), `s.${HASH_FIELD} <> c.${HASH_FIELD}`].join(' or ');
  const from = `from ${t.table} s join ${current} c on ${on('s', 'c')}`;
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
  const missingInTarget = num(k?.missing_in_target);
  const missingInSource = num(k?.missing_in_source);
  const sample = async (n: number, alias: string, where: string) =>
    n
      ? (await s.query<{ k: unknown }>(`select ${keyText(s, e, alias)} as k ${keysFrom} where ${where} order by 1 limit ${SAMPLES}`)).map((x) => String(x.k))
      : [];
  const mismatched = num(r?.mismatched);
  const differing = missingInTarget + missingInSource + mismatched;
  const mismatchRate = (differing + st.rejected) / Math.max(t.hubKeys, 1);
  let severity: Severity = missingInTarget + missingInSource > 0 ? 'critical' : 'none';
  for (const f of fieldMismatches) severity = worst(severity, f.severity);
  const currentCount = num(k?.n);
  const currentSum = String(k?.s ?? '0');
  // Without the ledger's figures (a ledger from before they were kept) the totals prove nothing: failed, so the scope is loaded whole.
  const sumsAgree =
    t.staged === st.staged && t.hubKeys === st.keys!.count && t.expected !== null && currentCount === t.expected.n && currentSum === t.expected.sum;
  if (!differing && !sumsAgree) severity = 'critical';
  const status = mismatchRate > FAIL_RATE || (!differing && !sumsAgree) ? 'failed' : severity === 'critical' ? 'escalated' : 'ok';
  return {
    entity: e.name,
    tenant: ledgerTenant(scope),
    sourceCount: t.hubKeys,
    sourceSum: t.expected?.sum ?? '0',
    rejected: st.rejected,
    stagedCount: t.staged,
    currentCount,
    currentSum,
    matched: num(r?.paired) - mismatched,
    mismatched,
    missingInTarget,
    missingInSource,
    mismatchRate,
    severity,
    status,
    fields: fieldMismatches,
    samples: {
      missingInTarget: await sample(missingInTarget, 'k', targetMissing),
      missingInSource: await sample(missingInSource, 'c', `k.${last} is null`),
    },
  };
}
