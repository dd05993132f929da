import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { seedHub } from '../../demo/seed.ts';
import { openHub } from '../../hub/db.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import type { CdcSource } from '../../cdc/source.ts';
import { execSql } from './private-pg.ts';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const HUB_SCHEMA = 'hub';

/** Seeds the demo hub into `url` (schema `hub`). */
export async function seedDemoHub(url: string, options: { tenants?: number; workers?: number; fullIdentity?: boolean } = {}): Promise<void> {
  const db = openHub(url);
  try {
    await seedHub(db, HUB_SCHEMA, { tenants: options.tenants ?? 2, workers: options.workers ?? 60, seed: 7 });
  } finally {
    await db.destroy();
  }
  if (options.fullIdentity) {
    await execSql(url, ...Object.values(HUB_ENTITIES).map((e) => `alter table ${HUB_SCHEMA}.${e.table} replica identity full`));
  }
}

export function sourceOf(url: string, over: Partial<CdcSource> = {}): CdcSource {
  return { hubUrl: url, schema: HUB_SCHEMA, entities: HUB_ENTITIES, slot: 'hubflow_cdc', publication: 'hubflow_pub', ...over };
}

/** Runs the real `hubflow` command with the hub at `hubUrl`. */
export function hubflow(env: Record<string, string>, ...args: string[]) {
  const result = spawnSync(process.execPath, [path.join(root, 'bin/hubflow.js'), ...args], {
    env: { ...process.env, HUBFLOW_LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
