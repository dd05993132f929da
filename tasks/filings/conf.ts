import { z } from 'zod';
import { PermanentError } from '../../core/errors.ts';
import { tenantIdProblem } from '../../hub/tenant-id.ts';
import { submitterSettingsSchema, type SubmitterSettings } from './submitter.ts';

/**
 * The filing cycle's run conf. With none of jurisdiction, period, tenant or tenants the run plans
 * what is due; any of them selects explicitly (see `planFilings`). Other keys are left to other uses.
 */
const confSchema = z
  .object({
    jurisdiction: z.string().min(1).optional(),
    /** One period id, or several (an annual id and an FPS month, say). */
    period: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    tenant: z.string().optional(),
    /** Several tenants: the filings of exactly these (with `tenant`, the union). */
    tenants: z.array(z.string()).min(1).optional(),
    /** Mark the files as test submissions (FPS test-in-live, T4 TEST reference). */
    test: z.boolean().optional(),
    submitters: submitterSettingsSchema.optional(),
  })
  .passthrough();

export interface Selection {
  jurisdiction?: string;
  periods?: string[];
  /** Tenant ids, each valid (see tenantIdProblem); the planner refuses one the hub does not know. */
  tenants?: string[];
}

export interface FilingConf {
  selection: Selection | null;
  test: boolean;
  submitters: SubmitterSettings;
}

export function parseFilingConf(conf: Readonly<Record<string, unknown>>): FilingConf {
  const parsed = confSchema.safeParse(conf);
  if (!parsed.success) {
    throw new PermanentError(`invalid filing conf: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const { jurisdiction, period, tenant } = parsed.data;
  const tenants = [...new Set([...(tenant !== undefined ? [tenant] : []), ...(parsed.data.tenants ?? [])])];
  const invalid = tenants.map((t) => tenantIdProblem(t)).filter((p) => p !== null);
  if (invalid.length) throw new PermanentError(`invalid filing conf: ${invalid.join('; ')}`);
  const selected = jurisdiction !== undefined || period !== undefined || tenants.length > 0;
  return {
    selection: selected
      ? {
          ...(jurisdiction && { jurisdiction }),
          ...(period && { periods: typeof period === 'string' ? [period] : period }),
          ...(tenants.length && { tenants }),
        }
      : null,
    test: parsed.data.test ?? false,
    submitters: parsed.data.submitters ?? {},
  };
}
