import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../tasks/filings/manifest.ts';
import { deliverFiling, filingFolder, isDelivered, listOutbox } from '../../tasks/filings/outbox.ts';

/**
 * A folder in the outbox is finished if and only if it has a manifest: a delivery that stops
 * half way (here: its rejects cannot be copied) leaves a folder that nothing takes for finished.
 */

let root: string;
const item = { jurisdiction: 'us-efw2', period: '2025', tenant: 'acme' };

function manifest(runId: number, sha256: string, bytes: number): Manifest {
  return {
    manifestVersion: 1,
    jurisdiction: 'us-efw2',
    title: 'US SSA EFW2 W-2 wage file',
    spec: { name: 'SSA Publication No. 42-007', version: 'Tax Year 2025' },
    period: { id: '2025', start: '2025-01-01', end: '2025-12-31', taxYear: '2025', payDate: null, deadline: '2026-02-03T04:59:59.999Z' },
    tenant: 'acme',
    employer: { orgId: 'O1', legalName: 'Acme US Inc.', taxId: '27-1234567', payrollRef: null, accountsOfficeRef: null },
    submitter: { name: 'Acme US Inc.', authorityId: 'ACME0001' },
    file: { name: 'W2REPORT-2025.txt', sha256, bytes },
    records: 1,
    rejected: 0,
    violations: 0,
    totals: { wages: 100 },
    recordSums: { gross: 100, incomeTax: 0, employeeSocial: 0, employerSocial: 0, net: 100 },
    test: false,
    hubSnapshotAt: '2026-01-02T06:00:00.000000Z',
    generatedAt: '2026-01-01T00:00:00.000Z',
    runId,
  };
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'hubflow-outbox-'));
  await writeFile(path.join(root, 'staged.txt'), 'RA...\r\n');
  await writeFile(path.join(root, 'rejects.jsonl'), '');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('the outbox', () => {
  it('delivers the file, the rejects and the manifest, and lists the folder as finished', async () => {
    const outbox = path.join(root, 'outbox');
    const folder = filingFolder(outbox, item);
    await deliverFiling({
      folder,
      file: path.join(root, 'staged.txt'),
      fileName: 'W2REPORT-2025.txt',
      rejectsFile: path.join(root, 'rejects.jsonl'),
      manifest: manifest(1, 'a'.repeat(64), 7),
    });
    expect((await readdir(folder)).sort()).toEqual(['W2REPORT-2025.txt', 'manifest.json', 'rejects.jsonl']);
    expect(await isDelivered(outbox, item)).toBe(true);
    expect((await listOutbox(outbox)).filings.map((f) => f.manifest.runId)).toEqual([1]);
  });

  it('a delivery that fails half way leaves no manifest, and no temporary file, so the folder is not finished', async () => {
    const outbox = path.join(root, 'outbox');
    const folder = filingFolder(outbox, item);
    const failing = deliverFiling({
      folder,
      file: path.join(root, 'staged.txt'),
      fileName: 'W2REPORT-2025.txt',
      rejectsFile: path.join(root, 'missing.jsonl'),
      manifest: manifest(2, 'b'.repeat(64), 7),
    });
    await expect(failing).rejects.toThrow(/ENOENT/);
    expect((await readdir(folder)).sort()).toEqual(['W2REPORT-2025.txt', 'rejects.jsonl']);
    expect(await isDelivered(outbox, item)).toBe(false);
    const listing = await listOutbox(outbox);
    expect(listing.filings).toEqual([]);
    expect(listing.unfinished).toEqual([{ folder, problem: 'no manifest.json: not finished' }]);

    const done = await deliverFiling({
      folder,
      file: path.join(root, 'staged.txt'),
      fileName: 'W2REPORT-2025.txt',
      rejectsFile: path.join(root, 'rejects.jsonl'),
      manifest: manifest(3, 'b'.repeat(64), 7),
    });
    expect(done.replaced).toBeNull();
    expect(JSON.parse(await readFile(path.join(folder, 'manifest.json'), 'utf8'))).toMatchObject({ runId: 3 });
  });
});
