import { z } from 'zod';
import { PermanentError } from '../../server/errors.ts';
import { submitterSettingsSchema, type SubmitterSettings } from './submitter.ts';

/**
 * The filing cycle's run conf. With none of jurisdiction, period or tenant the run plans what is
 * due; any of them selects explicitly (see `planFilings`). Other keys are left to other uses.
 */
const confSchema = z
  .object({
    jurisdiction: z.string().min(1).optional(),
    period: z.string().min(1).optional(),
    tenant: z.string().min(1).optional(),
    /** Mark the files as test submissions (FPS test-in-live, T4 TEST reference). */
    test: z.boolean().optional(),
    submitters: submitterSettingsSchema.optional(),
  })
  .passthrough();

export interface FilingConf {
  selection: { jurisdiction?: string; period?: string; tenant?: string } | null;
  test: boolean;
  submitters: SubmitterSettings;
}

export function parseFilingConf(conf: Readonly<Record<string, unknown>>): FilingConf {
  const parsed = confSchema.safeParse(conf);
  if (!parsed.success) {
    throw new PermanentError(`invalid filing conf: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const { jurisdiction, period, tenant } = parsed.data;
  const selected = jurisdiction !== undefined || period !== undefined || tenant !== undefined;
  return {
    selection: selected ? { ...(jurisdiction && { jurisdiction }), ...(period && { period }), ...(tenant && { tenant }) } : null,
    test: parsed.data.test ?? false,
    submitters: parsed.data.submitters ?? {},
  };
}
