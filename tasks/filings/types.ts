import type { FilingEmployer, Money, RenderTotals, Submitter } from '../../jurisdictions/types.ts';

/**
 * What the filing tasks hand each other: small JSON (ids, counts, totals, paths). The records
 * themselves stay in the staging area. Each step's result carries the previous one's, so any
 * task (and an operator reading a task instance) sees the whole filing so far.
 */

/** One filing: a jurisdiction's period for one tenant (whose one employer in that country files). */
export interface FilingItem {
  readonly jurisdiction: string;
  readonly period: string;
  readonly tenant: string;
}

export const filingLabel = (item: FilingItem) => `${item.jurisdiction} ${item.period} for tenant '${item.tenant}'`;

export interface Extracted {
  readonly item: FilingItem;
  /** The hub's snapshot instant (UTC, microseconds): the filing reports the hub as of then. */
  readonly snapshotAt: string;
  /** Null when the tenant has no employer in the jurisdiction's country: nothing to file. */
  readonly employer: FilingEmployer | null;
  /** Canonical records, gzip'd JSON lines; null when there is nothing to file. */
  readonly recordsFile: string | null;
  readonly records: number;
  /** Records the extract refused (the record contract: types, nulls, tenants), and their violations. */
  readonly extractRejected: number;
  readonly extractViolations: number;
  /** Their violations as JSON lines (values masked); validation puts them first in rejects.jsonl. */
  readonly extractRejectsFile: string;
  /** The staging folder of this filing (removed once delivered). */
  readonly dir: string;
}

export interface Validated extends Extracted {
  readonly submitter: Submitter;
  /** Records that passed the jurisdiction's rules, in the same order. */
  readonly validFile: string;
  readonly valid: number;
  /** Records rejected (each may break several rules). */
  readonly rejected: number;
  /** One JSON line per violation: record, field, rule, message. */
  readonly rejectsFile: string;
  readonly violations: number;
}

export interface Rendered extends Validated {
  /** The rendered file in staging, under the jurisdiction's file name. */
  readonly renderedFile: string;
  readonly fileName: string;
  readonly sha256: string;
  readonly bytes: number;
  /** What the file states, as the renderer returned it. */
  readonly totals: RenderTotals;
  /** Sums of the canonical period figures over the records rendered. */
  readonly recordSums: Money;
  readonly generatedAt: string;
  readonly test: boolean;
}

export interface Verified extends Rendered {
  /** The totals the file states, read back from it by the jurisdiction's file validator. */
  readonly fileTotals: RenderTotals;
}

export interface Delivered {
  readonly item: FilingItem;
  /** 'nothing' when the tenant had no employer or nobody was paid: no folder is written. */
  readonly status: 'delivered' | 'nothing';
  readonly folder: string | null;
  readonly records: number;
  readonly rejected: number;
  readonly sha256: string | null;
  readonly deadline: string;
  readonly late: boolean;
}

/** A filing with nothing to file: the tenant has no employer there, or nobody was paid. */
export interface NothingToFile {
  readonly item: FilingItem;
  readonly nothing: string;
}

export const isNothing = (x: object): x is NothingToFile => 'nothing' in x;
