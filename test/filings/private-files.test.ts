import { chmod, mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverStep, extractStep, renderStep, validateStep, verifyStep } from '../../tasks/filings/steps.ts';
import type { Extracted, Rendered, Validated, Verified } from '../../tasks/filings/types.ts';
import { filingHarness, type FilingHarness } from './support.ts';

/**
 * Staged records, rejects and filing files carry national ids, pay and addresses: whatever the
 * umask, they are created 0600 in 0700 folders, and a staging or outbox folder left 0755 by an
 * earlier version is tightened before anything is written into it.
 */

let h: FilingHarness;
let umask: number;
const item = { jurisdiction: 'us-efw2', period: '2025', tenant: 'globex-media' };

const modeOf = async (file: string) => (await stat(file)).mode & 0o777;

/** Every file and folder under `dir` (itself included), with its mode. */
async function modesUnder(dir: string): Promise<Map<string, number>> {
  const modes = new Map([[dir, await modeOf(dir)]]);
  for (const entry of await readdir(dir, { recursive: true })) modes.set(path.join(dir, entry), await modeOf(path.join(dir, entry)));
  return modes;
}

function expectPrivate(modes: Map<string, number>): void {
  const files = [...modes].filter(([, mode]) => mode !== 0o700 && mode !== 0o600);
  expect(files.map(([file, mode]) => `${file} ${mode.toString(8)}`)).toEqual([]);
}

beforeAll(async () => {
  // A umask of 0 would leave a file created without an explicit mode 0666: only explicit modes pass.
  umask = process.umask(0);
  h = await filingHarness({ worker: false });
  for (const dir of [h.staging, h.outbox]) {
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o755);
  }
});

afterAll(async () => {
  await h?.close();
  process.umask(umask);
});

describe('files with personal data', () => {
  it('a filing stages, renders and delivers only 0600 files in 0700 folders', async () => {
    const env = h.env(7001);
    const extracted = (await extractStep(env, item)) as Extracted;
    const validated = (await validateStep(env, extracted)) as Validated;
    const rendered = (await renderStep(env, validated)) as Rendered;

    const staged = await modesUnder(h.staging);
    expect(staged.get(h.staging)).toBe(0o700);
    expect(staged.get(rendered.renderedFile)).toBe(0o600);
    expect(staged.get(validated.rejectsFile)).toBe(0o600);
    expect(staged.get(extracted.recordsFile!)).toBe(0o600);
    expectPrivate(staged);

    const delivered = await deliverStep(env, (await verifyStep(env, rendered)) as Verified);
    expect(delivered.status).toBe('delivered');
    const outbox = await modesUnder(h.outbox);
    expect(outbox.get(h.outbox)).toBe(0o700);
    expect([...outbox.keys()].map((f) => path.basename(f))).toEqual(expect.arrayContaining(['manifest.json', 'rejects.jsonl', rendered.fileName]));
    expectPrivate(outbox);
  });
});
