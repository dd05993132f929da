import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGunzip, createGzip } from 'node:zlib';
import { PRIVATE_FILE_MODE, privateDir } from '../../core/private-files.ts';
import { lines } from './copy-lines.ts';
import { pathUnder } from '../../hub/tenant-id.ts';
import { filingPathParts } from './outbox.ts';
import type { FilingItem } from './types.ts';

/**
 * The staging area of one filing: canonical records as gzip'd JSON lines between the tasks,
 * and the rendered file until it is verified and delivered. Files appear under their final
 * name only once complete, so a retried task never reads half of an earlier try's output.
 */

export function stagingDirOf(stagingRoot: string, item: FilingItem, runId: number): string {
  if (!Number.isSafeInteger(runId) || runId < 0) throw new Error(`run id ${runId} cannot name a staging folder`);
  return pathUnder(path.join(stagingRoot, 'filings'), ...filingPathParts(item), `run-${runId}`);
}

const BATCH_CHARS = 256 * 1024;

/** Writes items as JSON lines, gzip'd (fastest level: staging is read once, soon). */
export async function writeJsonLines<T>(file: string, items: AsyncIterable<T>, signal?: AbortSignal): Promise<number> {
  await privateDir(path.dirname(file));
  const part = `${file}.part`;
  let count = 0;
  // Lines are joined into large chunks: one zlib call per chunk instead of per record.
  async function* batches(): AsyncGenerator<string> {
    let batch: string[] = [];
    let size = 0;
    for await (const item of items) {
      const line = `${JSON.stringify(item)}\n`;
      batch.push(line);
      size += line.length;
      count++;
      if (size >= BATCH_CHARS) {
        yield batch.join('');
        batch = [];
        size = 0;
      }
    }
    if (batch.length) yield batch.join('');
  }
  try {
    await pipeline(Readable.from(batches()), createGzip({ level: constants.Z_BEST_SPEED }), createWriteStream(part, { mode: PRIVATE_FILE_MODE }), { signal });
    await rename(part, file);
  } catch (err) {
    await rm(part, { force: true });
    throw err;
  }
  return count;
}

export async function* readJsonLines<T>(file: string): AsyncGenerator<T> {
  const source = createReadStream(file, { highWaterMark: 1 << 20 });
  const gunzip = createGunzip();
  // pipe() does not pass a read error on: without this a missing file would wait forever.
  source.on('error', (err) => gunzip.destroy(err));
  source.pipe(gunzip);
  try {
    for await (const line of lines(gunzip)) if (line) yield JSON.parse(line) as T;
  } finally {
    // A reader that stops early (a tenant violation) must not keep the file open.
    source.destroy();
    gunzip.destroy();
  }
}
