/**
 * What a reject reason, a log line or a page may show of a hub value. Personal and financial
 * values are never shown: only their class and length, which is enough to tell an empty or
 * truncated value from a long one. The raw row stays in the store's `rejects.raw`.
 */

/** What a field holds, for masking, retention and which changes a filing cares about. */
export const FIELD_CLASSES = ['pii', 'financial', 'operational', 'descriptive'] as const;
export type FieldClass = (typeof FIELD_CLASSES)[number];

const SHOWN_CHARS = 40;

export function isSensitiveClass(fieldClass: FieldClass): boolean {
  return fieldClass === 'pii' || fieldClass === 'financial';
}

/** The value as a reason may quote it: masked for personal and financial fields, else quoted and shortened. */
export function maskedValue(value: string | null, fieldClass: FieldClass): string {
  if (value === null) return 'null';
  if (isSensitiveClass(fieldClass)) return `[${fieldClass} value masked, ${value.length} characters]`;
  return JSON.stringify(value.length > SHOWN_CHARS ? `${value.slice(0, SHOWN_CHARS)}…` : value);
}
