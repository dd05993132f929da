import type { HubColumn } from '../../hub/snapshot.ts';
import type { ColumnType, Entity, FieldClass } from '../../hub/entities.ts';
import { ident, literal } from '../../hub/sql-names.ts';
import { tenantIdProblem } from '../../hub/tenant-id.ts';
import type { Field } from './layout.ts';

/**
 * The record contract's rules, each a short stable name a reject carries: a value the contract
 * requires is null (`not_null`), a value is not of its type (`type`), longer than its
 * `maxLength` (`max_length`), outside its `values` (`enum`), a tenant id that is null or breaks
 * the tenant-id rule (`tenant`), a key that is null (`key`).
 *
 * Checks the hub can make cheaply (null, length, enumeration) are SQL conditions the extract's
 * COPY query evaluates (`flagsOf`); type checks of hub columns looser than the contract run on
 * the values as COPY wrote them (`VALID`).
 *
 * Reasons are written for people (pages, API, logs): they name the field and the rule and
 * never show a personal or financial value whole; the raw row is kept beside them in the store.
 */

export const REJECT_RULES = ['not_null', 'type', 'max_length', 'enum', 'tenant', 'key'] as const;
export type RejectRule = (typeof REJECT_RULES)[number];

const SENSITIVE: ReadonlySet<FieldClass> = new Set(['pii', 'financial']);
const SHOWN_CHARS = 60;

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

/** Whether every value of a numeric hub type fits the warehouse's numeric(14,2). */
function fitsMoney(type: string): boolean {
  const m = /^numeric\((\d+),(\d+)\)$/.exec(type);
  return m !== null && Number(m[2]) <= 2 && Number(m[1]) - Number(m[2]) <= 12;
}

/** Hub column types (as `format_type` writes them) whose every value the configured type holds. */
export const COMPATIBLE: Record<ColumnType, (type: string) => boolean> = {
  text: (t) => /^(text|character varying|character|uuid|citext)\b/.test(t),
  // bigint and unconstrained numerics hold values the warehouse's integer and numeric(14,2) do not.
  integer: (t) => /^(smallint|integer)$/.test(t),
  numeric: (t) => /^(smallint|integer)$/.test(t) || fitsMoney(t),
  date: (t) => t === 'date',
  timestamptz: (t) => /^timestamp(\(\d\))? with time zone$/.test(t),
  boolean: (t) => t === 'boolean',
};

/** A calendar date, written YYYY-MM-DD (not 2023-02-29). */
const validDate = (v: string) =>
  /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`)) && new Date(`${v}T00:00:00Z`).toISOString().startsWith(v);

/** A value's check for a hub column whose type is looser than the configured one (text holding dates, say). */
export const VALID: Record<ColumnType, (v: string) => boolean> = {
  text: () => true,
  integer: (v) => /^-?\d{1,10}$/.test(v) && Math.abs(Number(v)) <= 2_147_483_647,
  numeric: (v) => /^-?\d{1,12}(\.\d{1,2})?$/.test(v),
  date: validDate,
  // ISO 8601 as PostgreSQL writes it, which both warehouses read; Date.parse alone takes 'March 7, 2024'.
  timestamptz: (v) =>
    /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?$/.test(v) &&
    validDate(v.slice(0, 10)) &&
    !Number.isNaN(Date.parse(v.replace(' ', 'T').replace(/([+-]\d{2}):?(\d{2})?$/, (_, h: string, m?: string) => `${h}:${m ?? '00'}`))),
  boolean: (v) => /^(t|f|true|false)$/.test(v),
};

/** A record-level check the hub evaluates while it sends the row: its failure marks the line. */
export interface Flag {
  /** The field's position on the line. */
  index: number;
  field: Field;
  rule: RejectRule;
  condition: string;
}

export const limitsOf = (entity: Entity, field: Field): Limits => (field.role === 'key' || field.role === 'tracked' ? entity.columns[field.name]! : {});

/**
 * The contract's checks of one field that the hub can make cheaply as it sends the row:
 * a required value that is null, a text too long, a value outside its enumeration. A check the
 * hub's own column already guarantees (NOT NULL, varchar(n)) is left out.
 */
export function flagsOf(entity: Entity, field: Field, index: number, hub: HubColumn): Flag[] {
  const col = `t.${ident(field.column)}`;
  const limits = limitsOf(entity, field);
  const required = field.role === 'key' || (field.role === 'tracked' && !entity.columns[field.name]!.nullable);
  const flags: Omit<Flag, 'index' | 'field'>[] = [];
  if (required && hub.nullable) flags.push({ rule: field.role === 'key' ? 'key' : 'not_null', condition: `${col} is null` });
  const declared = /^character varying\((\d+)\)$/.exec(hub.type);
  if (limits.maxLength !== undefined && !(declared && Number(declared[1]) <= limits.maxLength)) {
    flags.push({ rule: 'max_length', condition: `length(${col}::text) > ${limits.maxLength}` });
  }
  if (limits.values) flags.push({ rule: 'enum', condition: `${col}::text not in (${limits.values.map(quote).join(', ')})` });
  return flags.map((f) => ({ ...f, index, field }));
}

/** A SQL string literal for the hub's COPY query, which takes no bound parameters. */
export const quote = literal;
