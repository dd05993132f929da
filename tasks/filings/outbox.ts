import { chmod, copyFile, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { manifestSchema, type Manifest } from './manifest.ts';
import { PRIVATE_FILE_MODE, privateDir } from '../../core/private-files.ts';
import { assertTenantId, InvalidTenantIdError, pathUnder, tenantIdProblem } from '../../hub/tenant-id.ts';
import type { FilingItem } from './types.ts';

/**
 * The outbox: `<outbox>/<jurisdiction>/<period id>/<tenant>/` holds the filing file,
 * `rejects.jsonl` and `manifest.json`. Each is written under a temporary name in the same folder
 * and renamed into place (atomic within a file system), the manifest last: a folder is finished
 * if and only if it has a manifest, and a crash at any point never leaves a half-written file
 * under a final name.
 */

export const MANIFEST = 'manifest.json';
export const REJECTS = 'rejects.jsonl';
const TMP = /^\..+\.tmp$/;

export function filingFolder(outboxDir: string, item: FilingItem): string {
  return pathUnder(outboxDir, ...filingPathParts(item));
}

/**
 * The folder names of a filing: its jurisdiction, period and tenant ids, each refused unless it
 * is a valid id (never '', '.', '..' or a path separator), so no filing's folder can reach
 * another's or leave its root. Valid ids are folder names as they are.
 */
export function filingPathParts(item: FilingItem): [string, string, string] {
  for (const [what, id] of [
    ['jurisdiction', item.jurisdiction],
    ['period', item.period],
  ] as const) {
    const problem = idProblem(id);
    if (problem) throw new InvalidTenantIdError(`${what} id ${problem}`);
  }
  return [item.jurisdiction, item.period, assertTenantId(item.tenant)];
}

/** Why `id` cannot name a folder of the outbox or staging (the tenant id rule), or null. */
function idProblem(id: unknown): string | null {
  return tenantIdProblem(id)?.replace(/^tenant id /, '') ?? null;
}

export interface DeliverInput {
  folder: string;
  /** The outbox the folder is in: folders from there down are made private (0700). */
  outboxDir?: string;
  /** The verified file in staging, and its name in the folder. */
  file: string;
  fileName: string;
  rejectsFile: string;
  manifest: Manifest;
}

export interface DeliverOutcome {
  folder: string;
  /** The manifest this delivery replaced (a re-run of a delivered period), if any. */
  replaced: Manifest | null;
}

export async function deliverFiling(input: DeliverInput): Promise<DeliverOutcome> {
  const { folder } = input;
  await privateDir(folder, input.outboxDir);
  // An unreadable earlier manifest does not block a new delivery: it is replaced like any other.
  const replaced = await readManifest(path.join(folder, MANIFEST)).catch(() => null);
  // The folder stops looking finished before any of its files is replaced.
  await rm(path.join(folder, MANIFEST), { force: true });
  for (const name of await readdir(folder)) if (TMP.test(name)) await rm(path.join(folder, name), { force: true });
  const tag = `${input.manifest.runId}-${process.pid}`;
  await place(folder, input.fileName, tag, (tmp) => copyPrivate(input.file, tmp));
  await place(folder, REJECTS, tag, (tmp) => copyPrivate(input.rejectsFile, tmp));
  await place(folder, MANIFEST, tag, (tmp) => writeFile(tmp, `${JSON.stringify(input.manifest, null, 2)}\n`, { mode: PRIVATE_FILE_MODE }));
  await sync(folder);
  return { folder, replaced };
}

/** copyFile gives the copy the source's mode; the outbox's copies are private whatever the source's. */
async function copyPrivate(from: string, to: string): Promise<void> {
  await copyFile(from, to);
  await chmod(to, PRIVATE_FILE_MODE);
}

/** Writes `name` through a temporary file that is flushed to disk before it is renamed into place. */
async function place(folder: string, name: string, tag: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = path.join(folder, `.${name}.${tag}.tmp`);
  try {
    await write(tmp);
    await sync(tmp);
    await rename(tmp, path.join(folder, name));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function sync(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function readManifest(file: string): Promise<Manifest | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const parsed = manifestSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${file}: not a filing manifest: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export async function isDelivered(outboxDir: string, item: FilingItem): Promise<boolean> {
  return (await readManifest(path.join(filingFolder(outboxDir, item), MANIFEST)).catch(() => null)) !== null;
}

export interface OutboxListing {
  filings: { folder: string; manifest: Manifest }[];
  /** Folders without a manifest (a delivery in progress or interrupted), or with an unreadable one. */
  unfinished: { folder: string; problem: string }[];
  /** Folders whose name is not a valid jurisdiction, period or tenant id: never read, only named. */
  skipped: { folder: string; problem: string }[];
}

export interface OutboxFilter {
  jurisdiction?: string;
  period?: string;
  tenant?: string;
}

const LEVELS = ['jurisdiction', 'period', 'tenant'] as const;

/** What the outbox holds, in jurisdiction, period and tenant order. */
export async function listOutbox(outboxDir: string, filter: OutboxFilter = {}): Promise<OutboxListing> {
  const listing: OutboxListing = { filings: [], unfinished: [], skipped: [] };
  const dirs = async (dir: string) => {
    try {
      return (await readdir(dir, { withFileTypes: true }))
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  };
  async function walk(dir: string, level: number): Promise<void> {
    for (const name of await dirs(dir)) {
      const folder = path.join(dir, name);
      const what = LEVELS[level]!;
      const problem = idProblem(name);
      if (problem) {
        listing.skipped.push({ folder, problem: `not a filing folder: ${what} id ${problem}` });
        continue;
      }
      if (filter[what] && name !== filter[what]) continue;
      if (level < LEVELS.length - 1) {
        await walk(folder, level + 1);
        continue;
      }
      try {
        const manifest = await readManifest(path.join(folder, MANIFEST));
        if (manifest) listing.filings.push({ folder, manifest });
        else listing.unfinished.push({ folder, problem: 'no manifest.json: not finished' });
      } catch (err) {
        listing.unfinished.push({ folder, problem: (err as Error).message });
      }
    }
  }
  await walk(outboxDir, 0);
  return listing;
}
