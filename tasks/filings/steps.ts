import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { PermanentError } from '../../core/errors.ts';
import { PRIVATE_FILE_MODE, privateDir } from '../../core/private-files.ts';
import { ChunkWriter } from '../../jurisdictions/common.ts';
import path from 'node:path';
import type { HubDb } from '../../hub/db.ts';
import type { Entities } from '../../hub/entities.ts';
import { jurisdiction } from '../../jurisdictions/index.ts';
import type { Violation } from '../../jurisdictions/types.ts';
import { extractFiling, type ExtractOutcome, type RecordReject } from './extract.ts';
import { buildManifest } from './manifest.ts';
import { deliverFiling, filingFolder } from './outbox.ts';
import { periodOrFail } from './period.ts';
import { renderFiling } from './render.ts';
import { stagingDirOf, writeJsonLines } from './staging.ts';
import { resolveSubmitter, type SubmitterSettings } from './submitter.ts';
import {
  filingLabel,
  isNothing,
  type Delivered,
  type Extracted,
  type FilingItem,
  type NothingToFile,
  type Rendered,
  type Validated,
  type Verified,
} from './types.ts';
import { rejectLine, validateFiling } from './validate.ts';
import { verifyFiling } from './verify.ts';

/**
 * The five steps of one filing, each taking the previous one's result: what the filing-cycle
 * DAG runs as separate (retryable, observable) tasks, and `fileOne` runs in one go.
 */

export interface FilingEnv {
  /** The hub and its schema: only the extract reads them. */
  hub?: HubDb;
  hubSchema?: string;
  entities: Entities;
  stagingDir: string;
  outboxDir: string;
  runId: number;
  /** Submitter settings, most specific first (run conf, then the installation's file). */
  submitters: readonly SubmitterSettings[];
  test: boolean;
  /** Stores violations; those found at extract carry the record's raw row. */
  onRejects?: (item: FilingItem, violations: (Violation & { raw?: string })[]) => Promise<void>;
  signal?: AbortSignal;
}

const fail = (message: string): never => {
  throw new Error(message);
};

const context = (item: FilingItem) => {
  const j = jurisdiction(item.jurisdiction);
  return { j, period: periodOrFail(j, item.period) };
};

export async function extractStep(env: FilingEnv, item: FilingItem): Promise<Extracted | NothingToFile> {
  const { j, period } = context(item);
  const hub = env.hub ?? fail('the extract reads the hub: give env.hub');
  const schema = env.hubSchema ?? fail('the extract reads the hub: give env.hubSchema');
  const dir = stagingDirOf(env.stagingDir, item, env.runId);
  // A retry starts over from a fresh snapshot.
  await rm(dir, { recursive: true, force: true });
  await privateDir(dir, env.stagingDir);
  const recordsFile = path.join(dir, 'records.jsonl.gz');
  const rejects = new RejectsSink(path.join(dir, 'extract-rejects.jsonl'), env.onRejects && ((v) => env.onRejects!(item, v)));
  let outcome: ExtractOutcome<number>;
  try {
    outcome = await extractFiling({
      hub,
      schema,
      entities: env.entities,
      jurisdiction: j,
      tenant: item.tenant,
      period,
      sink: (_employer, employees) => writeJsonLines(recordsFile, employees, env.signal),
      onReject: (violations) => rejects.add(violations),
      signal: env.signal,
    });
    await rejects.close();
  } catch (err) {
    rejects.destroy();
    throw err;
  }
  if (!outcome.employer) return { item, nothing: `tenant '${item.tenant}' has no employer in ${j.country} as of ${outcome.snapshotAt}` };
  if (outcome.result === 0 && outcome.rejected > 0) {
    await rm(dir, { recursive: true, force: true });
    throw new PermanentError(
      `${filingLabel(item)}: all ${outcome.rejected} workers ${outcome.employer.orgId} paid were rejected at extract (${rejects.violations} violations, see the rejects); there is nothing to file`,
    );
  }
  if (outcome.result === 0) {
    await rm(dir, { recursive: true, force: true });
    return { item, nothing: `nobody was paid by ${outcome.employer.orgId} in the tax year up to ${period.end} (hub as of ${outcome.snapshotAt})` };
  }
  return {
    item,
    snapshotAt: outcome.snapshotAt,
    employer: outcome.employer,
    recordsFile,
    records: outcome.result,
    extractRejected: outcome.rejected,
    extractViolations: rejects.violations,
    extractRejectsFile: rejects.file,
    dir,
  };
}

/**
 * The extract's rejects: JSON lines in staging (what the outbox's rejects.jsonl starts with) and
 * the store, in batches, with each record's raw row.
 */
class RejectsSink {
  violations = 0;
  private readonly out: WriteStream;
  private readonly writer: ChunkWriter;
  private pending: RecordReject[] = [];

  constructor(
    readonly file: string,
    private readonly save: ((violations: RecordReject[]) => Promise<void>) | undefined,
  ) {
    this.out = createWriteStream(file, { mode: PRIVATE_FILE_MODE });
    this.writer = new ChunkWriter(this.out);
  }

  async add(violations: RecordReject[]): Promise<void> {
    this.violations += violations.length;
    for (const v of violations) await this.writer.write(rejectLine(v));
    this.pending.push(...violations);
    if (this.pending.length >= 500) await this.flushStore();
  }

  private async flushStore(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    if (batch.length) await this.save?.(batch);
  }

  async close(): Promise<void> {
    await this.flushStore();
    await this.writer.flush();
    this.out.end();
    await finished(this.out);
  }

  destroy(): void {
    this.out.destroy();
  }
}

export async function validateStep(env: FilingEnv, prev: Extracted | NothingToFile): Promise<Validated | NothingToFile> {
  if (isNothing(prev)) return prev;
  const { j, period } = context(prev.item);
  const submitter = resolveSubmitter(j.code, prev.employer!, env.submitters);
  return validateFiling({ jurisdiction: j, period, extracted: prev, submitter, onRejects: env.onRejects && ((v) => env.onRejects!(prev.item, v)) });
}

export async function renderStep(env: FilingEnv, prev: Validated | NothingToFile): Promise<Rendered | NothingToFile> {
  if (isNothing(prev)) return prev;
  const { j, period } = context(prev.item);
  return renderFiling({ jurisdiction: j, period, validated: prev, test: env.test });
}

export async function verifyStep(_env: FilingEnv, prev: Rendered | NothingToFile): Promise<Verified | NothingToFile> {
  if (isNothing(prev)) return prev;
  return verifyFiling(context(prev.item).j, prev);
}

export interface DeliverStepResult extends Delivered {
  /** The sha256 of the filing this delivery replaced, when it differs from the new one. */
  replacedSha256: string | null;
  /** A delivered filing's data cut (the hub snapshot it reports) and when it was in the outbox: its sync latency. */
  dataCut?: string;
  deliveredAt?: string;
}

export async function deliverStep(env: FilingEnv, prev: Verified | NothingToFile, now = new Date()): Promise<DeliverStepResult> {
  const { j, period } = context(prev.item);
  const deadline = period.deadline.toISOString();
  if (isNothing(prev)) {
    return { item: prev.item, status: 'nothing', folder: null, records: 0, rejected: 0, sha256: null, deadline, late: false, replacedSha256: null };
  }
  const manifest = buildManifest(j, period, prev, env.runId);
  const { folder, replaced } = await deliverFiling({
    folder: filingFolder(env.outboxDir, prev.item),
    outboxDir: env.outboxDir,
    file: prev.renderedFile,
    fileName: prev.fileName,
    rejectsFile: prev.rejectsFile,
    manifest,
  });
  // The manifest is in place and flushed: from here the filing is delivered.
  const deliveredAt = new Date().toISOString();
  // Staged records hold personal data: they go as soon as the filing is safely in the outbox.
  await rm(prev.dir, { recursive: true, force: true });
  return {
    item: prev.item,
    status: 'delivered',
    folder,
    records: manifest.records,
    rejected: manifest.rejected,
    sha256: manifest.file.sha256,
    deadline,
    late: now.getTime() > period.deadline.getTime(),
    replacedSha256: replaced && replaced.file.sha256 !== manifest.file.sha256 ? replaced.file.sha256 : null,
    dataCut: prev.snapshotAt,
    deliveredAt,
  };
}

/** One filing, every step in this process (the CLI, the tests, the benchmark). */
export async function fileOne(env: FilingEnv, item: FilingItem): Promise<DeliverStepResult> {
  const extracted = await extractStep(env, item);
  try {
    const validated = await validateStep(env, extracted);
    const rendered = await renderStep(env, validated);
    const verified = await verifyStep(env, rendered);
    return await deliverStep(env, verified);
  } catch (err) {
    if (!isNothing(extracted)) await rm(extracted.dir, { recursive: true, force: true });
    throw err;
  }
}
