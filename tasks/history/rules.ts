import type { FieldClass } from '../../server/hub/entities.ts';
import { tenantIdProblem } from '../../server/hub/tenant-id.ts';
import type { Field } from './layout.ts';

/**
 * The record contract's rules, each a short stable name a reject carries: a value the contract
 * requires is null (`not_null`), a value is not of its type (`type`), longer than its
 * `maxLength` (`max_length`), outside its `values` (`enum`), a tenant id that is null or breaks
 * the tenant-id rule (`tenant`), a key that is null (`key`).
 *
 * Reasons are written for people (pages, API, logs): they name the field and the rule and
 * never show a personal or financial value whole; the raw row is kept beside them in the store.
 */

export const REJECT_RULES = ['not_null', 'type', 'max_length', 'enum', 'tenant', 'key'] as const;
export type RejectRule = (typeof REJECT_RULES)[number];

const SENSITIVE: ReadonlySet<FieldClass> = new Set(['pii', 'financial']);
const SHOWN_CHARS = 60;

/** A COPY text field as the value it stands for: escapes undone, `\N` as null. */
export function fromCopyText(field: string): string | null {
  if (field === '\\N') return null;
  if (!field.includes('\\')) return field;
  return field.replace(/\\(.)/g, (_, c: string) => ({ t: '\t', n: '\n', r: '\r', b: '\b', f: '\f', v: '\v' })[c] ?? c);
}

/**
 * A value as a reason may show it: quoted, control characters made visible, cut short; a
 * personal or financial value keeps only its first two and last characters ('AB••••••C'), a
 * short one none.
 */
export function shownValue(value: string, fieldClass: FieldClass): string {
  const chars = [...value];
  if (SENSITIVE.has(fieldClass)) {
    return `'${chars.length < 6 ? '•'.repeat(chars.length) : `${chars.slice(0, 2).join('')}${'•'.repeat(Math.min(chars.length - 3, 12))}${chars.at(-1)}`}'`;
  }
  const cut = chars.length > SHOWN_CHARS ? `${chars.slice(0, SHOWN_CHARS).join('')}…` : value;
  return `'${cut.replace(/[\x00-\x1F\x7F]/g, (c) => `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`)}'`;
}

export interface Limits {
  maxLength?: number;
  values?: readonly string[];
}

/** Why `value` (the hub's, unescaped) breaks `rule` for `field`: the reason a reject carries. */
export function reasonOf(field: Field, rule: RejectRule, value: string | null, limits: Limits = {}): string {
  const shown = value === null ? 'null' : shownValue(value, field.class);
  switch (rule) {
    case 'not_null':
      return `${field.name}: missing (null), the contract requires a value`;
    case 'key':
      return `${field.name}: key missing (null), the row cannot be placed in history`;
    case 'tenant':
      return `${field.name}: ${tenantIdProblem(value)}`;
    case 'type':
      return `${field.name}: ${shown} is not a valid ${field.type}`;
    case 'max_length':
      return `${field.name}: ${shown} has ${[...(value ?? '')].length} characters, more than the ${limits.maxLength} allowed`;
    case 'enum': {
      const allowed = limits.values ?? [];
      return `${field.name}: ${shown} is not one of ${allowed.slice(0, 12).join(', ')}${allowed.length > 12 ? ', …' : ''}`;
    }
  }
}
