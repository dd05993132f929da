import path from 'node:path';
import { PermanentError } from '../core/errors.ts';

/**
 * Tenant ids name folders (staging, outbox), BullMQ job data, metric labels and history rows,
 * so they are held to a character set that is safe in all of them: 1 to 64 characters of
 * ASCII letters, digits, '.', '_' and '-', starting with a letter or digit. That rules out
 * '', '.', '..', path separators, whitespace and a leading '-' (read as an option by a shell
 * command). A hub row whose tenant breaks the rule is rejected with the reason this returns.
 */
export const TENANT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const TENANT_ID_RULE = "1-64 characters of A-Z, a-z, 0-9, '.', '_', '-', starting with a letter or digit";

/**
 * The global scope (the reference data, which belongs to no tenant) wherever a scope is named:
 * ledger and reconciliation rows, staging folders, pages and metric labels. In code it is
 * `null`. It starts with '_', which the tenant-id rule refuses, so no tenant can be named so.
 */
export const GLOBAL_SCOPE = '_global';

/** Why `id` is not a valid tenant id, or null when it is. */
export function tenantIdProblem(id: unknown): string | null {
  if (id === null || id === undefined) return 'tenant id is missing (null)';
  if (typeof id !== 'string') return `tenant id is not text (${typeof id})`;
  if (id === '') return 'tenant id is empty';
  if (TENANT_ID_PATTERN.test(id)) return null;
  return `tenant id ${JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}…` : id)} is not ${TENANT_ID_RULE}`;
}

/** Permanent: retrying never makes an id valid. */
export class InvalidTenantIdError extends PermanentError {}

/** Throws unless `id` is a valid tenant id; returns it typed as a string. */
export function assertTenantId(id: unknown): string {
  const problem = tenantIdProblem(id);
  if (problem) throw new InvalidTenantIdError(problem);
  return id as string;
}

/**
 * `root` joined with `parts`, refused unless the result stays under `root`: the last guard on
 * any path built from an id, whatever validation came before it.
 */
export function pathUnder(root: string, ...parts: string[]): string {
  const base = path.resolve(root);
  const full = path.resolve(base, ...parts);
  if (full !== base && !full.startsWith(base + path.sep)) {
    throw new InvalidTenantIdError(`path ${JSON.stringify(parts.join('/'))} leaves its root ${base}`);
  }
  if (full === base && parts.some((p) => p !== '')) throw new InvalidTenantIdError(`path ${JSON.stringify(parts.join('/'))} resolves to its root ${base}`);
  return full;
}
