import type { Warehouse, WarehouseSession } from '../../warehouse/contract.ts';
import type { Entities, Entity, FieldClass } from '../../hub/entities.ts';
import type { ReconciliationRecord, Severity } from 'hubflow';
import { loadRejectedKeys } from './apply.ts';
import type { StagedEntity } from './extract.ts';
import { HASH_FIELD, identityFields, ledgerTenant, stagingColumnNames, tracked, type Field, type Scope } from './layout.ts';
import { currentTotalsSql, currentView, stagingDdl } from './sql.ts';

/**
 * Reconciliation: proves, per scope and entity, that the warehouse's current rows are the hub
 * snapshot the run extracted. Counts and checksums of source, staging and target, and a
 * record-level comparison of the staged snapshot with `<entity>_current`, field by field:
 * matched, mismatched (and in which fields), missing in the target, missing in the source.
 *
 * A key rejected today is unknown, not missing: its current row (kept from its last good
 * load) is left out of the comparison and of the current totals, and counted as rejected.
 */

/** Above this share of records not proven equal (differing or rejected, of those extracted) the reconcile task fails the run. */
export const FAIL_RATE = 0.001;
export const SAMPLES = 10;

export const SEVERITY_OF_CLASS: Record<FieldClass, Severity> = { pii: 'critical', financial: 'critical', operational: 'medium', descriptive: 'low' };
const RANK: Record<Severity, number> = { none: 0, low: 1, medium: 2, critical: 3 };
export const worst = (a: Severity, b: Severity): Severity => (RANK[a] >= RANK[b] ? a : b);

export interface FieldMismatch {
  field: string;
  fieldClass: FieldClass;
  severity: Severity;
  mismatched: number;
  sampleKeys: string[];
}

/** What the reconciliation of one entity in one scope found: the record the engine keeps, with samples of the missing keys. */
export interface EntityReconciliation extends Omit<ReconciliationRecord, 'logicalDate' | 'fields'> {
  fields: FieldMismatch[];
  /** An incremental run's with the 'nightly' cadence: live rows the hub deleted, left for the next full snapshot to close. */
  pendingDeletes?: number;
  samples: { missingInTarget: string[]; missingInSource: string[] };
}

const num = (v: unknown) => Number(v ?? 0);

export function keyText(s: WarehouseSession, e: Entity, alias: string): string {
  const d = s.dialect;
  return identityFields(e)
    .filter((f) => f.role === 'key')
    .map((f) => `cast(${alias}.${d.id(f.name)} as text)`)
    .join(` || '/' || `);
}

export interface ReconcileOptions {
  warehouse: Warehouse;
  entities: Entities;
  scope: Scope;
  staged: StagedEntity[];
  /** Unique per try: names the temporary table the snapshot is reloaded into. */
  attempt: string;
}

export async function reconcileScope(opts: ReconcileOptions): Promise<EntityReconciliation[]> {
  const { warehouse: wh, scope } = opts;
  const tag = opts.attempt.replace(/[^a-z0-9]/gi, '_').toLowerCase();
  return wh.session(async (s) => {
    const out: EntityReconciliation[] = [];
    for (const st of opts.staged) {
      const e = opts.entities[st.entity];
      if (!e) continue;
      if (st.file === null) {
        if (st.rejected) out.push(unplaced(st, scope));
        continue;
      }
      const table = s.dialect.id(`rec_${e.name}_${tag}`.slice(0, 63));
      await s.query(stagingDdl(s.dialect, table, e));
      const staged = await s.load(table, stagingColumnNames(e), st.file, `${opts.attempt}/reconcile/${e.name}`);
      const rejected = await loadRejectedKeys(s, e, st, {
        name: `rrj_${e.name}_${tag}`,
        attempt: `${opts.attempt}/reconcile/${e.name}-rejected`,
        scope,
        unless: 'nothing was reconciled',
      });
      out.push(await compare(s, wh, e, scope, st, table, staged, rejected));
    }
    return out;
  });
}

/**
 * Rows of no valid tenant, which the global scope rejects and no scope loads: none of them is
 * in the warehouse, so all count against the threshold, and a run holding them is not green.
 */
function unplaced(st: StagedEntity, scope: Scope): EntityReconciliation {
  const mismatchRate = st.rejected / Math.max(st.extracted, 1);
  return {
    entity: st.entity,
    tenant: ledgerTenant(scope),
    sourceCount: st.extracted,
    sourceSum: st.sum,
    rejected: st.rejected,
    stagedCount: 0,
    currentCount: 0,
    currentSum: '0',
    matched: 0,
    mismatched: 0,
    missingInTarget: 0,
    missingInSource: 0,
    mismatchRate,
    severity: 'none',
    status: mismatchRate > FAIL_RATE ? 'failed' : 'ok',
    fields: [],
    samples: { missingInTarget: [], missingInSource: [] },
  };
}

async function compare(
  s: WarehouseSession,
  wh: Warehouse,
  e: Entity,
  scope: Scope,
  st: StagedEntity,
  table: string,
  staged: number,
  rejected: string | null,
): Promise<EntityReconciliation> {
  const d = s.dialect;
  const [totals] = await s.query<{ n: unknown; s: unknown }>(currentTotalsSql(wh, e, scope));
  const ids = identityFields(e);
  const last = d.id(ids[ids.length - 1]!.name);
  const on = ids.map((f) => `s.${d.id(f.name)} = c.${d.id(f.name)}`).join(' and ');
  const fields = tracked(e);
  const differs = (f: Field) => `s.${d.id(f.name)} is distinct from c.${d.id(f.name)}`;
  const both = `s.${last} is not null and c.${last} is not null`;
  const anyDiffers = [...fields.map(differs), `s.${HASH_FIELD} <> c.${HASH_FIELD}`].join(' or ');
  const current = `(select * from ${wh.table(currentView(e))} v${e.tenantColumn && scope !== null ? ` where v.tenant_id = ${d.text(scope)}` : ''})`;
  // The current rows of keys rejected today are set aside: neither compared nor missing.
  // Joins, not correlated subqueries: Snowflake evaluates few of those.
  const keys = rejected
    ? `(select distinct ${ids.map((f) => d.id(f.name)).join(', ')} from ${rejected}) r on ${ids.map((f) => `r.${d.id(f.name)} = c.${d.id(f.name)}`).join(' and ')}`
    : null;
  const from = `from ${table} s full join ${current} c on ${on}${keys ? ` left join ${keys} where not (s.${last} is null and r.${last} is not null)` : ''}`;
  const and = keys ? 'and' : 'where';
  const [row] = await s.query<Record<string, unknown>>(
    `select
  sum(case when c.${last} is null then 1 else 0 end) as missing_in_target,
  sum(case when s.${last} is null then 1 else 0 end) as missing_in_source,
  (${keys ? `select count(*) from ${current} c join ${keys}` : '0'}) as kept,
  (${keys ? `select cast(coalesce(sum(${d.int60(`c.${HASH_FIELD}`)}), 0) as text) from ${current} c join ${keys}` : "'0'"}) as kept_sum,
  sum(case when ${both} and (${anyDiffers}) then 1 else 0 end) as mismatched,
  sum(case when ${both} then 1 else 0 end) as paired,
  ${fields.map((f, i) => `sum(case when ${both} and ${differs(f)} then 1 else 0 end) as f${i}`).join(',\n  ')}
${from}`,
  );
  const r = row ?? {};
  const sample = async (where: string) =>
    num(r[where === 'target' ? 'missing_in_target' : 'missing_in_source'])
      ? (
          await s.query<{ k: unknown }>(
            `select ${keyText(s, e, where === 'target' ? 's' : 'c')} as k ${from} ${and} ${where === 'target' ? `c.${last} is null` : `s.${last} is null`} order by 1 limit ${SAMPLES}`,
          )
        ).map((x) => String(x.k))
      : [];
  const fieldMismatches: FieldMismatch[] = [];
  for (const [i, f] of fields.entries()) {
    const mismatched = num(r[`f${i}`]);
    if (!mismatched) continue;
    const keys = await s.query<{ k: unknown }>(`select ${keyText(s, e, 's')} as k ${from} ${and} ${both} and ${differs(f)} order by 1 limit ${SAMPLES}`);
    fieldMismatches.push({ field: f.name, fieldClass: f.class, severity: SEVERITY_OF_CLASS[f.class], mismatched, sampleKeys: keys.map((x) => String(x.k)) });
  }
  const missingInTarget = num(r.missing_in_target);
  const missingInSource = num(r.missing_in_source);
  const mismatched = num(r.mismatched);
  const differing = missingInTarget + missingInSource + mismatched;
  // Rejected records are not in the warehouse as the hub holds them either: they count against the threshold too.
  const mismatchRate = (differing + st.rejected) / Math.max(st.extracted, 1);
  // A missing record is missing all of its fields, PII and money included.
  let severity: Severity = missingInTarget + missingInSource > 0 ? 'critical' : 'none';
  for (const f of fieldMismatches) severity = worst(severity, f.severity);
  const currentCount = num(totals?.n) - num(r.kept);
  const currentSum = String(BigInt(String(totals?.s ?? '0')) - BigInt(String(r.kept_sum ?? '0')));
  const sumsAgree = staged === st.staged && currentCount === st.staged && currentSum === st.sum;
  // Equal records with unequal sums would mean hashes that disagree with the values: as bad as a mismatch.
  if (!differing && !sumsAgree) severity = 'critical';
  const status = mismatchRate > FAIL_RATE || (!differing && !sumsAgree) ? 'failed' : severity === 'critical' ? 'escalated' : 'ok';
  return {
    entity: e.name,
    tenant: ledgerTenant(scope),
    sourceCount: st.extracted,
    sourceSum: st.sum,
    rejected: st.rejected,
    stagedCount: staged,
    currentCount,
    currentSum,
    matched: num(r.paired) - mismatched,
    mismatched,
    missingInTarget,
    missingInSource,
    mismatchRate,
    severity,
    status,
    fields: fieldMismatches,
    samples: { missingInTarget: await sample('target'), missingInSource: await sample('source') },
  };
}
