import type { ColumnType, Generated, Selectable } from 'kysely';
import type { LatencySource } from '../../core/latency-histogram.ts';

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json = ColumnType<unknown, string, string>;
/** A timestamp the database fills in by default. */
type DefaultTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export const RUN_STATES = ['queued', 'running', 'success', 'failed', 'cancelled'] as const;
export type RunState = (typeof RUN_STATES)[number];
/** A run in one of these has ended; `tasks clear` may start it again. */
export const FINISHED_RUN_STATES: ReadonlySet<RunState> = new Set(['success', 'failed', 'cancelled']);
export const RUN_TYPES = ['scheduled', 'manual', 'backfill', 'test'] as const;
export type RunType = (typeof RUN_TYPES)[number];

/**
 * Task instance states. `scheduled` waits on its upstreams; `queued` has a job in BullMQ;
 * `deferred` waits for a blackout of a resource it uses to end; `up_for_retry` failed and
 * waits out its backoff. The last five are terminal: `cancelled` is an instance its run's
 * cancellation ended before it finished (see cancel.ts).
 */
export const TI_STATES = [
  'scheduled',
  'queued',
  'deferred',
  'running',
  'up_for_retry',
  'success',
  'failed',
  'upstream_failed',
  'skipped',
  'cancelled',
] as const;
export type TiState = (typeof TI_STATES)[number];
export const TERMINAL_TI_STATES: ReadonlySet<TiState> = new Set(['success', 'failed', 'upstream_failed', 'skipped', 'cancelled']);
/** States in which an instance should have a BullMQ job. */
export const LIVE_TI_STATES = ['queued', 'deferred', 'running', 'up_for_retry'] as const satisfies readonly TiState[];

export interface DagsTable {
  dag_id: string;
  is_paused: Generated<boolean>;
  file: string | null;
  updated_at: DefaultTimestamp;
}

export interface DagRunsTable {
  id: Generated<number>;
  dag_id: string;
  logical_date: Timestamp;
  interval_start: Timestamp;
  interval_end: Timestamp;
  run_type: RunType;
  state: RunState;
  conf: Json;
  /** When the run became due (its interval's end); schedule delay = started_at - due_at. */
  due_at: Timestamp;
  created_at: DefaultTimestamp;
  started_at: Timestamp | null;
  ended_at: Timestamp | null;
  /** Set once, when the run's SLA alert (start window or deadline) was raised. */
  sla_alerted_at: Timestamp | null;
  sla_reason: string | null;
  /** Why the run was cancelled (state `cancelled`). */
  cancel_reason: string | null;
}

export interface TaskInstancesTable {
  id: Generated<number>;
  run_id: number;
  dag_id: string;
  task_id: string;
  map_index: Generated<number>;
  state: TiState;
  /** Tries started so far. */
  try_number: Generated<number>;
  max_tries: number;
  /** Bumped when the task is cleared or its job must be replaced; part of the BullMQ job id. */
  generation: Generated<number>;
  map_item: Json | null;
  result: Json | null;
  error: Json | null;
  ready_at: Timestamp | null;
  started_at: Timestamp | null;
  ended_at: Timestamp | null;
  next_try_at: Timestamp | null;
  heartbeat_at: Timestamp | null;
  worker: string | null;
  deferred_until: Timestamp | null;
  deferred_reason: string | null;
  /** Pooled resources this instance takes slots in, and how many in each. */
  pools: Generated<string[]>;
  pool_slots: Generated<number>;
}

export interface AttemptsTable {
  id: Generated<number>;
  ti_id: number;
  try_number: number;
  worker: string;
  started_at: Timestamp;
  ended_at: Timestamp | null;
  /** running, success, retry, failed, lost (the worker died or Redis lost the job), cancelled, skipped. */
  outcome: string;
  error: Json | null;
}

export interface DeadLettersTable {
  id: Generated<number>;
  /** Null once the instance is gone (a mapped task's expansion collapsed by a clear). */
  ti_id: number | null;
  run_id: number;
  dag_id: string;
  task_id: string;
  map_index: number;
  tries: number;
  error: Json;
  created_at: DefaultTimestamp;
  resolved_at: Timestamp | null;
  /** cleared, replayed, marked_success. */
  resolution: string | null;
  /** Who resolved it, when an operator did. */
  resolved_by: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface InstallationTable {
  id: string;
  created_at: DefaultTimestamp;
}

export interface ResourcePoolsTable {
  resource_id: string;
  slots: number;
}

export interface RejectsTable {
  id: Generated<number>;
  run_id: number;
  task_id: string;
  /** 'extract' or 'filing'; 'tenant': a tenant id a history run left out (no scope). */
  kind: string;
  entity: string;
  tenant_id: string | null;
  record_key: string;
  field: string;
  /** The rule the record broke; null on rejects stored before rules were recorded. */
  rule: string | null;
  reason: string;
  raw: string | null;
  created_at: DefaultTimestamp;
}

export const SEVERITIES = ['none', 'low', 'medium', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface ReconciliationsTable {
  id: Generated<number>;
  run_id: number;
  logical_date: ColumnType<Date, string, string>;
  entity: string;
  tenant_id: string;
  source_count: number;
  source_sum: string;
  rejected: number;
  staged_count: number;
  current_count: number;
  current_sum: string;
  matched: number;
  mismatched: number;
  missing_in_target: number;
  missing_in_source: number;
  mismatch_rate: number;
  severity: Severity;
  status: 'ok' | 'escalated' | 'failed';
  checked_at: DefaultTimestamp;
}

export interface ReconciliationFieldsTable {
  reconciliation_id: number;
  field: string;
  field_class: string;
  severity: Severity;
  mismatched: number;
  sample_keys: string[];
}

/** An SLO of an integration while breached (recovered_at null), and after. */
export interface IntegrationBreachesTable {
  id: Generated<number>;
  dag_id: string;
  integration: string;
  slo: string;
  detail: string;
  breached_at: DefaultTimestamp;
  recovered_at: Timestamp | null;
}

/** One line a try of a task logged or printed; level is a logger's (trace to fatal) or stdout / stderr for what it wrote there. */
export interface TaskLogsTable {
  ti_id: number;
  try_number: number;
  seq: number;
  at: Timestamp;
  level: string;
  line: string;
}

/** The latency histogram of one load's versions or one filing (see server/engine/sync-latency.ts). */
export interface SyncLatencyTable {
  id: Generated<number>;
  dag_id: string | null;
  run_id: number | null;
  task_id: string | null;
  integration: string | null;
  kind: 'version' | 'filing';
  entity: string;
  scope: string | null;
  source: LatencySource;
  count: ColumnType<string, number, number>;
  sum_seconds: number;
  min_seconds: number;
  max_seconds: number;
  buckets: ColumnType<string[], number[], number[]>;
  visible_at: Timestamp;
  recorded_at: DefaultTimestamp;
}

export interface StoreSchema {
  task_logs: TaskLogsTable;
  integration_breaches: IntegrationBreachesTable;
  sync_latency: SyncLatencyTable;
  rejects: RejectsTable;
  reconciliations: ReconciliationsTable;
  reconciliation_fields: ReconciliationFieldsTable;
  installation: InstallationTable;
  resource_pools: ResourcePoolsTable;
  dags: DagsTable;
  dag_runs: DagRunsTable;
  task_instances: TaskInstancesTable;
  attempts: AttemptsTable;
  dead_letters: DeadLettersTable;
}

export type DagRunRow = Selectable<DagRunsTable>;
export type TaskInstanceRow = Selectable<TaskInstancesTable>;
export type AttemptRow = Selectable<AttemptsTable>;
export type DeadLetterRow = Selectable<DeadLettersTable>;
