import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Config } from '../../core/config.ts';
import { PermanentError } from '../../core/errors.ts';
import type { FilingEmployer, Submitter } from '../../jurisdictions/types.ts';

/**
 * Who transmits a filing and whom the authority contacts. The hub knows the employer but not
 * the people and credentials behind a submission, so those come from settings:
 *
 *   1. the run's conf, `submitters: { "<jurisdiction>" | "*": {...} }` (a manual run, the demo);
 *   2. the JSON file named by HUBFLOW_FILING_SUBMITTERS, same shape (an installation's standing setup);
 *   3. the employer itself: its legal name, address and no authority id (it files its own return).
 *
 * Each field is taken from the first source that sets it, the jurisdiction's entry before "*".
 * The authority ids: SSA BSO user id (EFW2, required), CRA RepID or transmitter business number
 * (T4; without one the employer's BN transmits), HMRC sender id (not written into an FPS). EFW2
 * and T4 also need a contact name, phone and e-mail, which no hub field holds: without settings
 * their employer rules stop the filing and say which field is missing.
 */

const address = z.object({
  line1: z.string(),
  line2: z.string().nullable().default(null),
  city: z.string(),
  region: z.string().nullable().default(null),
  postcode: z.string(),
  country: z.string().length(2),
});

const settings = z
  .object({
    name: z.string().min(1),
    authorityId: z.string().min(1).nullable(),
    taxId: z.string().min(1).nullable(),
    address,
    contact: z.object({ name: z.string(), phone: z.string(), email: z.string() }).partial(),
  })
  .partial()
  .strict();

export const submitterSettingsSchema = z.record(z.string(), settings);
export type SubmitterSettings = z.infer<typeof submitterSettingsSchema>;

/** Parses settings from a run's conf or a file; the message names the entry and field at fault. */
export function parseSubmitterSettings(value: unknown, source: string): SubmitterSettings {
  const parsed = submitterSettingsSchema.safeParse(value ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new PermanentError(`${source}: invalid submitter settings: ${issues}`);
  }
  return parsed.data;
}

/**
 * The settings file named by HUBFLOW_FILING_SUBMITTERS, if any. Read through the loaded
 * configuration so nothing else reads the environment.
 */
export function configuredSubmitters(config: Pick<Config, 'HUBFLOW_FILING_SUBMITTERS'>): SubmitterSettings {
  const file = config.HUBFLOW_FILING_SUBMITTERS;
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PermanentError(`HUBFLOW_FILING_SUBMITTERS: cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return parseSubmitterSettings(JSON.parse(text), `HUBFLOW_FILING_SUBMITTERS (${file})`);
  } catch (err) {
    if (err instanceof SyntaxError) throw new PermanentError(`HUBFLOW_FILING_SUBMITTERS (${file}): not JSON: ${err.message}`);
    throw err;
  }
}

export function resolveSubmitter(jurisdiction: string, employer: FilingEmployer, sources: readonly SubmitterSettings[]): Submitter {
  const entries = sources.flatMap((s) => [s[jurisdiction], s['*']]).filter((e) => e !== undefined);
  const pick = <K extends keyof z.infer<typeof settings>>(key: K) => entries.find((e) => e[key] !== undefined)?.[key];
  const contact = (key: 'name' | 'phone' | 'email') => entries.find((e) => e.contact?.[key] !== undefined)?.contact?.[key] ?? '';
  return {
    name: pick('name') ?? employer.legalName,
    authorityId: pick('authorityId') ?? null,
    taxId: pick('taxId') ?? null,
    address: pick('address') ?? employer.address,
    contact: { name: contact('name'), phone: contact('phone'), email: contact('email') },
  };
}

/**
 * Demo submitters: what an EOR platform's payroll operations team would configure, with
 * well-formed ids (an 8-character BSO user id; no CRA RepID, so each Canadian employer
 * transmits under its own BN). Not real credentials: files made with them are test files.
 */
export const DEMO_SUBMITTERS: SubmitterSettings = {
  '*': { contact: { name: 'Payroll Operations', phone: '+1 (212) 555-0142', email: 'payroll-ops@hubflow.example' } },
  'us-efw2': { authorityId: 'HFDEMO01' },
  'gb-rti-fps': { contact: { name: 'Payroll Operations', phone: '020 7946 0142', email: 'payroll-ops@hubflow.example' } },
};
