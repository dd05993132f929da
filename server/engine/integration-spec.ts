import { z } from 'zod';
import { durationMs, type Duration } from './duration.ts';

export const INTEGRATION_PATTERNS = ['batch', 'incremental', 'cdc'] as const;
export type IntegrationPattern = (typeof INTEGRATION_PATTERNS)[number];

/** What a DAG author writes: the integration a DAG serves and the service levels it promises. */
export interface IntegrationOptions {
  /** The integration's name, e.g. 'workers-to-warehouse'. */
  name: string;
  /** The system the data goes to: 'warehouse', 'jurisdiction:uk-hmrc', 'payroll'. */
  target: string;
  pattern: IntegrationPattern;
  /** Who answers for the integration's SLOs; the DAG's owner when left out. */
  owner?: string;
  slo: {
    /** From the data's cut (a run's interval end) to the data in the target, over successful runs. */
    latency?: { p50: Duration; p99: Duration };
    /** Share of finished runs that succeeded, 0 to 1 (0.99). */
    successRate?: number;
    /** At most this many open dead letters, none older than `dwell`. */
    deadLetters?: { depth: number; dwell: Duration };
  };
}

/** The compiled declaration: durations in ms, the owner resolved. */
export interface Integration {
  readonly name: string;
  readonly target: string;
  readonly pattern: IntegrationPattern;
  readonly owner: string | undefined;
  readonly slo: {
    readonly latencyMs?: { readonly p50: number; readonly p99: number };
    readonly successRate?: number;
    readonly deadLetters?: { readonly depth: number; readonly dwellMs: number };
  };
}

/** The schema of `integration` in defineDag; `duration` is dag.ts's checked duration field. */
export function integrationSchema(duration: (min: number) => z.ZodType<number, unknown>) {
  return z
    .object({
      name: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/, 'use letters, digits, _ . : - (at most 128)'),
      target: z.string().min(1, 'name the system the data goes to'),
      pattern: z.enum(INTEGRATION_PATTERNS),
      owner: z.string().optional(),
      slo: z
        .object({
          latency: z
            .object({ p50: duration(1), p99: duration(1) })
            .strict()
            .optional(),
          successRate: z.number().gt(0, 'must be above 0').max(1, 'must be at most 1 (a share, 0.99 for 99%)').optional(),
          deadLetters: z
            .object({ depth: z.number().int().min(0), dwell: duration(1) })
            .strict()
            .optional(),
        })
        .strict(),
    })
    .strict();
}

/** A --window or ?window= value in ms ('7d', '12h', '30d'), or a sentence saying why not. */
export function parseWindow(value: string): number | string {
  const ms = durationMs(value);
  if (typeof ms === 'string') return ms;
  if (ms < 60_000 || ms > 366 * 86_400_000) return `'${value}' is outside 1m to 366d`;
  return ms;
}
