import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll } from 'vitest';
import type { Entity } from '../../hub/entities.ts';
import { applyScope, utcDayInterval } from '../../tasks/history/apply.ts';
import type { ExtractResult } from '../../tasks/history/extract.ts';
import { snapshotFields, tracked } from '../../tasks/history/layout.ts';
import { canonicalEncoding, Checksum, rowHash } from '../../transforms/row-hash.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';

/** Staged snapshots as the extract writes them (gzip'd COPY text, which every dialect loads), removed after the file's tests. */

export type Values = (string | null)[];

export const clients = HUB_ENTITIES.clients!;
export const countries = HUB_ENTITIES.countries!;

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** One staged line as the extract writes it: the COPY text of the row, a tab, the hash of its tracked values. */
export function stagedLine(e: Entity, values: Values): { line: string; hash: string } {
  const fields = snapshotFields(e).filter((f) => f.role !== 'row_hash');
  const firstTracked = fields.findIndex((f) => f.role === 'tracked');
  const hash = rowHash(values.slice(firstTracked, firstTracked + tracked(e).length));
  return { line: `${canonicalEncoding(values)}\t${hash}\n`, hash };
}

/** The checksum the extract records for `rows`: what the warehouse's current totals must come to. */
export function checksumOf(e: Entity, rows: Values[]): string {
  const checksum = new Checksum();
  for (const values of rows) checksum.add(stagedLine(e, values).hash);
  return checksum.sum;
}

/** A staged snapshot of one entity; `rejectedKeys` (COPY-text lines of tenant and key) staged beside it. */
export async function stage(e: Entity, scope: string | null, snapshotAt: string, rows: Values[], rejectedKeys: Values[] = []): Promise<ExtractResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hubflow-sf-'));
  dirs.push(dir);
  const checksum = new Checksum();
  const lines = rows.map((values) => {
    const { line, hash } = stagedLine(e, values);
    checksum.add(hash);
    return line;
  });
  const file = path.join(dir, `${e.name}.tsv.gz`);
  const bytes = gzipSync(lines.join(''));
  await writeFile(file, bytes);
  let keys = null;
  if (rejectedKeys.length) {
    keys = { file: path.join(dir, `${e.name}.rejected-keys.tsv.gz`), count: rejectedKeys.length };
    await writeFile(keys.file, gzipSync(rejectedKeys.map((k) => `${canonicalEncoding(k)}\n`).join('')));
  }
  return {
    scope,
    snapshotAt,
    entities: [
      {
        entity: e.name,
        file,
        extracted: rows.length,
        staged: rows.length,
        rejected: rejectedKeys.length,
        sum: checksum.sum,
        bytes: bytes.length,
        rejectedKeys: keys,
      },
    ],
  };
}

export const CLIENT_ROWS: Values[] = [
  ['acme', 'C1', 'Acme "Ltd"', 'GB', 'GBP', 'ops@acme.test', 'active', '2025-12-27 09:00:00+00'],
  ['acme', 'C2', 'Tab\there', 'FR', 'EUR', null, 'active', '2025-12-27 09:00:00.123456+00'],
  ['acme', 'C3', "O'Brien \\ Sons", 'US', 'USD', '', 'paused', '2025-12-28 08:00:00+00'],
];

export const SNAPSHOT = '2025-12-28T10:00:00.000000Z';

/** The clients snapshot of `scope`, applied as run 42 of 2025-12-28. */
export async function applyClients(
  wh: Warehouse,
  attempt: string,
  scope = 'acme',
  o: { rows?: Values[]; snapshotAt?: string; runId?: number; day?: string } = {},
) {
  const extract = await stage(
    clients,
    scope,
    o.snapshotAt ?? SNAPSHOT,
    (o.rows ?? CLIENT_ROWS).map((r) => [scope, ...r.slice(1)]),
  );
  const result = await applyScope({
    warehouse: wh,
    entities: { clients },
    extract,
    runId: o.runId ?? 42,
    interval: utcDayInterval(o.day ?? '2025-12-28'),
    attempt,
  });
  return { extract, result };
}
