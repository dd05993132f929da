import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GLOBAL_SCOPE, pathUnder, tenantIdProblem } from '../../hub/tenant-id.ts';

describe('tenant ids', () => {
  it('accepts the ids tenants are given', () => {
    for (const id of ['acme', 'northwind-health', 'T1', 'a.b_c-d', 'x'.repeat(64)]) expect(tenantIdProblem(id)).toBeNull();
  });

  it('refuses ids that could escape a folder or read as an option, saying why', () => {
    expect(tenantIdProblem(null)).toBe('tenant id is missing (null)');
    expect(tenantIdProblem('')).toBe('tenant id is empty');
    for (const id of ['.', '..', '../x', 'a/b', 'a\\b', '-rf', ' acme', 'acme ', 'ac me', 'é', '.hidden', 'x'.repeat(65), 'a\nb']) {
      expect(tenantIdProblem(id), id).toMatch(/is not 1-64 characters/);
    }
  });

  it('names the global scope with a name no tenant can have', () => {
    expect(GLOBAL_SCOPE).toBe('_global');
    expect(tenantIdProblem(GLOBAL_SCOPE)).toMatch(/is not 1-64 characters/);
  });

  it('keeps every built path under its root', () => {
    const root = path.resolve('/tmp/outbox');
    expect(pathUnder(root, 'gb', 'acme')).toBe(path.join(root, 'gb', 'acme'));
    expect(() => pathUnder(root, 'gb', '..', '..', 'etc')).toThrow(/leaves its root/);
    expect(() => pathUnder(root, '..')).toThrow(/leaves its root/);
    expect(() => pathUnder(root, '.')).toThrow(/resolves to its root/);
    expect(() => pathUnder(root, '/etc')).toThrow(/leaves its root/);
  });
});
