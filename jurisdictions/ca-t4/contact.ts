/** Contact details in the split CRA asks for: a 3-digit area code, '999-9999' and an optional extension. */

export interface Phone {
  readonly area: string;
  readonly number: string;
  readonly extension: string | null;
}

/**
 * A North American number as people type it ('+1 (416) 555-0199 ext. 12'); null when it is not
 * one, since CRA's contact fields only hold a 3-digit area code and a 7-digit number.
 */
export function parsePhone(value: string): Phone | null {
  const m = /^(.*?)(?:\s*(?:x|ext\.?|extension|#)\s*(\d{1,7}))?\s*$/i.exec(value);
  if (!m) return null;
  let digits = m[1]!.replace(/[\s().+-]/g, '');
  if (!/^\d+$/.test(digits)) return null;
  if (digits.length === 11 && digits.startsWith('1')) digits = digits.slice(1);
  // NANP: area code and exchange never start with 0 or 1.
  if (!/^[2-9]\d{2}[2-9]\d{6}$/.test(digits)) return null;
  return { area: digits.slice(0, 3), number: `${digits.slice(3, 6)}-${digits.slice(6)}`, extension: m[2] ?? null };
}

/** The schema's e-mail field takes 60 characters; the shape check catches obvious typos only. */
export function emailProblem(value: string): string | null {
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) return `'${value}' is not an e-mail address`;
  if (value.length > 60) return `e-mail address has ${value.length} characters, CRA allows 60`;
  return null;
}
