import caT4 from './ca-t4/index.ts';
import gbRtiFps from './gb-rti-fps/index.ts';
import usEfw2 from './us-efw2/index.ts';
import type { Jurisdiction } from './types.ts';

/**
 * Every jurisdiction hubflow files in. Adding one: its folder, and one line here. A plugin loads
 * its renderer and file validator (XML builders, XSD machinery) when a filing first needs them,
 * so a process that only loads DAGs (`hubflow dags list`) loads none of it.
 */
export const JURISDICTIONS: readonly Jurisdiction[] = [gbRtiFps, usEfw2, caT4];

export function jurisdiction(code: string): Jurisdiction {
  const found = JURISDICTIONS.find((j) => j.code === code);
  if (!found) throw new Error(`unknown jurisdiction '${code}'; known: ${JURISDICTIONS.map((j) => j.code).join(', ')}`);
  return found;
}
