import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../tasks/filings/outbox.ts';
import { fileOne } from '../../tasks/filings/steps.ts';
import { filingHarness, type FilingHarness } from './support.ts';

/**
 * `hubflow filings validate` and `filings list`, run as the real command in a child process,
 * output and exit code captured.
 */

let h: FilingHarness;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The real `hubflow` command in a child process, as an operator runs it. */
async function hubflow(...args: string[]): Promise<Outcome> {
  const result = spawnSync(process.execPath, [path.join(root, 'bin/hubflow.js'), ...args], {
    env: { ...process.env, HUBFLOW_OUTBOX_DIR: h.outbox },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

const ITEMS = [
  { jurisdiction: 'us-efw2', period: '2025', tenant: 'northwind-health' },
  { jurisdiction: 'us-efw2', period: '2025', tenant: 'globex-media' },
  { jurisdiction: 'gb-rti-fps', period: '2025-26-M09', tenant: 'northwind-health' },
];

const fileOf = async (item: (typeof ITEMS)[number]) => {
  const folder = path.join(h.outbox, item.jurisdiction, item.period, item.tenant);
  const m = (await readManifest(path.join(folder, 'manifest.json')))!;
  return path.join(folder, m.file.name);
};

beforeAll(async () => {
  h = await filingHarness({ worker: false });
  for (const item of ITEMS) await fileOne(h.env(), item);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('hubflow filings validate', () => {
  it('passes a clean file with exit code 0 and states its totals', async () => {
    const file = await fileOf(ITEMS[0]!);
    const r = await hubflow('filings', 'validate', file, '--jurisdiction', 'us-efw2');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/: valid US SSA EFW2 W-2 wage file \(Tax Year 2025\): \d+ records; wages \d+\.\d\d, federalIncomeTax/);
  });

  it('prints each violation of a hand-broken EFW2 file with its record and field, and exits 1', async () => {
    const file = await fileOf(ITEMS[0]!);
    const broken = path.join(path.dirname(h.outbox), 'broken.txt');
    const lines = (await readFile(file, 'latin1')).split('\r\n');
    // Record 3 is the first RW: its SSN (positions 3-11) gets the never-issued area 666, and its
    // wages (positions 188-198) a cent more, which the RT totals then contradict.
    const rw = lines[2]!;
    const wages = String(Number(rw.slice(187, 198)) + 1).padStart(11, '0');
    lines[2] = `${rw.slice(0, 2)}666${rw.slice(5, 187)}${wages}${rw.slice(198)}`;
    await writeFile(broken, lines.join('\r\n'), 'latin1');

    const r = await hubflow('filings', 'validate', broken, '--jurisdiction', 'us-efw2');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/record 3 \(RW\)\s+ssn\s+ssn\.area\s+/);
    expect(r.stdout).toMatch(/record \d+ \(RT\)\s+wages\s+efw2\.totals\s+/);
    expect(r.stdout).toMatch(/broken\.txt: 2 violations of US SSA EFW2 W-2 wage file/);

    const json = await hubflow('filings', 'validate', broken, '--jurisdiction', 'us-efw2', '--json');
    expect(json.code).toBe(1);
    const parsed = JSON.parse(json.stdout) as { valid: boolean; violations: { record: string; field: string; rule: string }[] };
    expect(parsed.valid).toBe(false);
    expect(parsed.violations.map((v) => [v.record, v.field, v.rule])).toEqual([
      ['record 3 (RW)', 'ssn', 'ssn.area'],
      [expect.stringMatching(/\(RT\)$/), 'wages', 'efw2.totals'],
    ]);
  });

  it('checks an FPS against the schema: a hand-broken element is reported with its employee and line', async () => {
    const file = await fileOf(ITEMS[2]!);
    const broken = path.join(path.dirname(h.outbox), 'broken-fps.xml');
    const xml = await readFile(file, 'utf8');
    await writeFile(broken, xml.replace(/<Gender>([FM])<\/Gender>/, '<Gender>X</Gender>'));
    const r = await hubflow('filings', 'validate', broken, '--jurisdiction', 'gb-rti-fps', '--json');
    expect(r.code).toBe(1);
    const { violations } = JSON.parse(r.stdout) as { violations: { record: string; field: string; rule: string; message: string }[] };
    expect(violations.length).toBeGreaterThanOrEqual(1);
    expect(violations.every((v) => /employee 1\b/.test(v.record))).toBe(true);
    expect(violations.some((v) => v.field.endsWith('Gender'))).toBe(true);
  });

  it('exits 2 on usage errors: an unknown jurisdiction, a missing file, no jurisdiction', async () => {
    const file = await fileOf(ITEMS[0]!);
    const unknown = await hubflow('filings', 'validate', file, '--jurisdiction', 'fr-dsn');
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    expect(unknown.stderr).toContain("unknown jurisdiction 'fr-dsn'; known: gb-rti-fps, us-efw2, ca-t4");
    const missing = await hubflow('filings', 'validate', path.join(h.outbox, 'nope.txt'), '--jurisdiction', 'us-efw2');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.txt: no such file');
    const bare = await hubflow('filings', 'validate', file);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('--jurisdiction <code> is required');
  });

  it('stops quietly, with its exit code, when the reader of its output goes away (| head)', async () => {
    const broken = path.join(path.dirname(h.outbox), 'not-xml.xml');
    await writeFile(broken, 'x');
    const child = spawn(process.execPath, [path.join(root, 'bin/hubflow.js'), 'filings', 'validate', broken, '--jurisdiction', 'ca-t4'], {
      env: { ...process.env, HUBFLOW_OUTBOX_DIR: h.outbox },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    expect(stderr).not.toContain('EPIPE');
    expect(code).toBe(1);
  });

  it('validates a file hubflow did not produce, copied anywhere', async () => {
    const copy = path.join(path.dirname(h.outbox), 'from-elsewhere.xml');
    await copyFile(await fileOf(ITEMS[2]!), copy);
    const r = await hubflow('filings', 'validate', copy, '--jurisdiction', 'gb-rti-fps');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('valid UK HMRC RTI Full Payment Submission (FPS)');
  });
});

describe('hubflow filings list', () => {
  it('lists the finished filings from their manifests, filtered', async () => {
    const all = await hubflow('filings', 'list');
    expect(all.code).toBe(0);
    const rows = all.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^jurisdiction\s+period\s+tenant\s+employer\s+records\s+rejected\s+totals\s+file\s+sha256$/);
    expect(rows).toHaveLength(2 + ITEMS.length);

    const us = await hubflow('filings', 'list', '--jurisdiction', 'us-efw2', '--tenant', 'globex-media', '--json');
    const { filings } = JSON.parse(us.stdout) as {
      filings: { jurisdiction: string; tenant: string; records: number; file: { sha256: string }; folder: string }[];
    };
    expect(filings).toHaveLength(1);
    const m = (await readManifest(path.join(h.outbox, 'us-efw2', '2025', 'globex-media', 'manifest.json')))!;
    expect(filings[0]).toMatchObject({ jurisdiction: 'us-efw2', tenant: 'globex-media', records: m.records, file: { sha256: m.file.sha256 } });

    const text = await hubflow('filings', 'list', '--period', '2025-26-M09');
    const fps = (await readManifest(path.join(h.outbox, 'gb-rti-fps', '2025-26-M09', 'northwind-health', 'manifest.json')))!;
    expect(text.stdout).toMatch(
      new RegExp(
        `^gb-rti-fps\\s+2025-26-M09\\s+northwind-health\\s+${fps.employer.orgId} ${fps.employer.payrollRef}\\s+${fps.records}\\s+${fps.rejected}\\s+employeeNics \\d+\\.\\d\\d, `,
        'm',
      ),
    );
    expect(text.stdout).toContain(`FPS-2025-26-M09.xml  ${fps.file.sha256.slice(0, 12)}`);
    expect(text.stdout).not.toContain('us-efw2');
  });

  it('names an unfinished folder (no manifest) on stderr rather than listing it', async () => {
    const folder = path.join(h.outbox, 'ca-t4', '2025', 'initech-media');
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, 'T4-2025.xml'), '<Submission>');
    const r = await hubflow('filings', 'list', '--jurisdiction', 'ca-t4');
    expect(r.stdout.trim()).toBe('(none)');
    expect(r.stderr).toContain(`unfinished: ${folder}: no manifest.json`);
  });

  it('skips and names a folder whose name is not a valid id, even one holding a manifest', async () => {
    const good = path.join(h.outbox, 'us-efw2', '2025', 'globex-media');
    const odd = path.join(h.outbox, 'us-efw2', '2025', '.globex media');
    await mkdir(odd, { recursive: true });
    await copyFile(path.join(good, 'manifest.json'), path.join(odd, 'manifest.json'));
    const r = await hubflow('filings', 'list', '--jurisdiction', 'us-efw2', '--json');
    expect(r.code).toBe(0);
    const listed = JSON.parse(r.stdout) as { filings: { folder: string }[]; skipped: { folder: string; problem: string }[] };
    expect(listed.filings.map((f) => f.folder)).not.toContain(odd);
    expect(listed.skipped).toEqual([
      { folder: odd, problem: expect.stringMatching(/^not a filing folder: tenant id "\.globex media" is not 1-64 characters/) },
    ]);
    expect(r.stderr).toContain(`skipped: ${odd}: not a filing folder`);
  });
});
