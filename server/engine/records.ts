import { sql } from 'kysely';
import { TENANT_ID_PATTERN } from '../../hub/tenant-id.ts';
import type { Store } from '../store/db.ts';
import type { Severity } from '../store/schema.ts';
import { recordSyncLatency, type LatencyRecord } from './sync-latency.ts';

/** A record a task refused, kept with the run so someone can see it and replay it. */
export interface RejectRecord {
  /** 'extract', 'filing', or 'tenant' (a tenant id a history run left out). */
  kind: string;
  entity: string;
  tenant: string | null;
  key: string;
  field: string;
  rule?: string | null;
  reason: string;
  raw?: string | null;
}

/**
 * Which of this task's rejects: all, or those of one entity and/or tenant. `tenant: null`
 * means the rows of no tenant: a null tenant id, or one that breaks the tenant id rule.
 */
export interface RejectFilter {
  entity?: string;
  tenant?: string | null;
}

/** One entity's reconciliation in one tenant (or the global scope), with its field mismatches. */
export interface ReconciliationRecord {
  entity: string;
  tenant: string;
  logicalDate: string;
  sourceCount: number;
  sourceSum: string;
  rejected: number;
  stagedCount: number;
  currentCount: number;
  currentSum: string;
  matched: number;
  mismatched: number;
  missingInTarget: number;
  missingInSource: number;
  mismatchRate: number;
  severity: Severity;
  status: 'ok' | 'escalated' | 'failed';
  fields: { field: string; fieldClass: string; severity: Severity; mismatched: number; sampleKeys: string[] }[];
}

/**
 * The records the engine keeps for a task, written and read through these narrow methods only:
 * a task sees its own run, never the store.
 */
export interface TaskRecords {
  /** Keeps rejects of this task instance's run (in slices: a statement's parameters are limited). */
  reject(rejects: readonly RejectRecord[]): Promise<void>;
  /** Forgets this task's rejects (all, or those the filter selects): a retry starts its account over. */
  clearRejects(filter?: RejectFilter): Promise<void>;
  /** The rejects an upstream task of this run kept for `field`, oldest first. */
  rejectsOf(taskId: string, field: string): Promise<{ key: string; raw: string | null }[]>;
  /** Keeps this run's reconciliations, replacing any of the same entity and tenant. */
  reconciliations(results: readonly ReconciliationRecord[]): Promise<void>;
  /** The state of an upstream instance of this run (and why it ended so), undefined if it has none. */
  instanceState(taskId: string, mapIndex: number): Promise<{ state: string; reason: string | undefined } | undefined>;
  /** Keeps sync latency histograms this task measured (see sync-latency.ts). */
  syncLatency(records: readonly LatencyRecord[]): Promise<void>;
}

export function taskRecords(store: Store, runId: number, taskId: string): TaskRecords {
  return {
    async reject(rejects) {
      for (let i = 0; i < rejects.length; i += 1000) {
        await store
          .insertInto('rejects')
          .values(
            rejects.slice(i, i + 1000).map((r) => ({
              run_id: runId,
              task_id: taskId,
              kind: r.kind,
              entity: r.entity,
              tenant_id: r.tenant,
              record_key: r.key,
              field: r.field,
              rule: r.rule ?? null,
              reason: r.reason,
              raw: r.raw ?? null,
            })),
          )
          .execute();
      }
    },
    async clearRejects(filter = {}) {
      let q = store.deleteFrom('rejects').where('run_id', '=', runId).where('task_id', '=', taskId);
      if (filter.entity !== undefined) q = q.where('entity', '=', filter.entity);
      if (filter.tenant !== undefined) {
        const tenant = filter.tenant;
        q = q.where((eb) =>
          tenant === null ? eb.or([eb('tenant_id', 'is', null), sql<boolean>`tenant_id !~ ${TENANT_ID_PATTERN.source}`]) : eb('tenant_id', '=', tenant),
        );
      }
      await q.execute();
    },
    async rejectsOf(upstream, field) {
      const rows = await store
        .selectFrom('rejects')
        .select(['record_key', 'raw'])
        .where('run_id', '=', runId)
        .where('task_id', '=', upstream)
        .where('field', '=', field)
        .orderBy('id')
        .execute();
      return rows.map((r) => ({ key: r.record_key, raw: r.raw }));
    },
    async reconciliations(results) {
      await store.transaction().execute(async (trx) => {
        for (const r of results) {
          await trx.deleteFrom('reconciliations').where('run_id', '=', runId).where('entity', '=', r.entity).where('tenant_id', '=', r.tenant).execute();
          const { id } = await trx
            .insertInto('reconciliations')
            .values({
              run_id: runId,
              logical_date: r.logicalDate,
              entity: r.entity,
              tenant_id: r.tenant,
              source_count: r.sourceCount,
              source_sum: r.sourceSum,
              rejected: r.rejected,
              staged_count: r.stagedCount,
              current_count: r.currentCount,
              current_sum: r.currentSum,
              matched: r.matched,
              mismatched: r.mismatched,
              missing_in_target: r.missingInTarget,
              missing_in_source: r.missingInSource,
              mismatch_rate: r.mismatchRate,
              severity: r.severity,
              status: r.status,
            })
            .returning('id')
            .executeTakeFirstOrThrow();
          if (r.fields.length)
            await trx
              .insertInto('reconciliation_fields')
              .values(
                r.fields.map((f) => ({
                  reconciliation_id: id,
                  field: f.field,
                  field_class: f.fieldClass,
                  severity: f.severity,
                  mismatched: f.mismatched,
                  sample_keys: f.sampleKeys,
                })),
              )
              .execute();
        }
      });
    },
    async instanceState(upstream, mapIndex) {
      const row = await store
        .selectFrom('task_instances')
        .select(['state', 'error'])
        .where('run_id', '=', runId)
        .where('task_id', '=', upstream)
        .where('map_index', '=', mapIndex)
        .executeTakeFirst();
      return row && { state: row.state, reason: (row.error as { message?: string } | null)?.message };
    },
    syncLatency: (records) => recordSyncLatency(store, { runId, taskId }, records),
  };
}
