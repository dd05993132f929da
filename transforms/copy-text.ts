/**
 * PostgreSQL's COPY text format, field by field: what the hub's COPY writes and what a COPY
 * into the warehouse reads. Null is `\N`; backslash and control characters are escaped.
 */

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };
const ESCAPED: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\b': '\\b', '\f': '\\f', '\v': '\\v' };

/** A COPY text field as the value it stands for: escapes undone (octal and hex too), `\N` as null. */
export function fromCopyText(field: string): string | null {
  if (field === '\\N') return null;
  if (!field.includes('\\')) return field;
  return field.replace(/\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))/g, (_, octal: string | undefined, hex: string | undefined, ch: string | undefined) => {
    if (octal) return String.fromCharCode(parseInt(octal, 8));
    if (hex) return String.fromCharCode(parseInt(hex, 16));
    return ESCAPES[ch!] ?? ch!;
  });
}

/** A value as COPY's text format writes it: backslash and the control characters escaped. */
export function toCopyText(value: string): string {
  return value.replace(/[\\\t\n\r\b\f\v]/g, (c) => ESCAPED[c]!);
}
