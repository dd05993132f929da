import { createHash } from 'node:crypto';
import { RetryableError, type TaskContext } from 'hubflow';

/**
 * Tasks of the example DAG: a small, self-contained extract -> validate -> publish shape with
 * a per-tenant fan-out, so the demo shows mapping, fan-in, a retry and a trigger rule without
 * needing a hub database.
 */
export function listTenants(): string[] {
  return ['acme', 'globex', 'initech'];
}

export interface TenantExtract {
  tenant: string;
  records: number;
  checksum: string;
}

export async function extractTenant(ctx: TaskContext<string>): Promise<TenantExtract> {
  const tenant = ctx.item;
  // The first try for one tenant fails the way a flaky network does, to show backoff at work.
  if (tenant === 'globex' && ctx.tryNumber === 1) throw new RetryableError('hub connection reset by peer');
  const records = 100 + tenant.length * 17;
  const checksum = createHash('sha256').update(`${tenant}:${records}:${ctx.logicalDate.toISOString()}`).digest('hex').slice(0, 16);
  ctx.log.info({ tenant, records }, 'extracted');
  return { tenant, records, checksum };
}

export function validateExtracts(extracts: TenantExtract[]): { tenants: number; records: number } {
  return { tenants: extracts.length, records: extracts.reduce((n, e) => n + e.records, 0) };
}

export function publish({ records }: { records: number }): { published: number } {
  return { published: records };
}

export function alertOnFailure(ctx: TaskContext): void {
  ctx.log.warn('validation failed: publishing was skipped');
}
