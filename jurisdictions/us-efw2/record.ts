import { PermanentError } from '../../core/errors.ts';
import { RECORD_LENGTH, type Field, type Layout } from './layout.ts';
import { mask } from './text.ts';

/** Turns field values into one 512-character record, and reads fields back, from the layout tables. */

export type FieldValues = Readonly<Record<string, string | number | null | undefined>>;

/** A value the writer cannot put in its field: a bug upstream of the writer, never a file. */
export class RecordFormatError extends PermanentError {}

/** Printable ASCII; the second excludes a-z for fields that must be upper case. */
const PRINTABLE = /^[\x20-\x7e]*$/;
const UPPER_PRINTABLE = /^[\x20-\x60\x7b-\x7e]*$/;
const DIGITS = /^\d*$/;

type FieldWriter = (values: FieldValues) => string;

function fieldWriter(type: string, f: Field): FieldWriter {
  const fail = (problem: string): never => {
    throw new RecordFormatError(`EFW2 ${type} ${f.name} (${f.start}-${f.start + f.length - 1}): ${problem}`);
  };
  const spaces = ' '.repeat(f.length);
  const zeros = '0'.repeat(f.length);
  if (f.name === 'recordIdentifier') return () => type;
  // An absent value is the common case (most money fields): its text is a constant.
  switch (f.kind) {
    case 'B':
      return () => spaces;
    case 'M':
      return (values) => {
        const v = values[f.name];
        if (v === undefined || v === null || v === 0) return zeros;
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return fail(`money must be a whole, non-negative number of cents, got ${String(v)}`);
        const text = String(v);
        return text.length > f.length ? fail(`${text} cents does not fit ${f.length} digits`) : zeros.slice(text.length) + text;
      };
    case 'N': {
      const empty = f.blankable ? spaces : zeros;
      return (values) => {
        const v = values[f.name];
        if (v === null || v === undefined || v === '') return empty;
        const text = String(v);
        const shown = f.sensitive ? mask(text) : text;
        if (!DIGITS.test(text)) return fail(`'${shown}' is not digits`);
        if (text.length > f.length) return fail(`'${shown}' is longer than ${f.length}`);
        return f.leftJustified ? text + spaces.slice(text.length) : zeros.slice(text.length) + text;
      };
    }
    case 'A': {
      const allowed = f.mixedCase ? PRINTABLE : UPPER_PRINTABLE;
      return (values) => {
        const v = values[f.name];
        if (v === null || v === undefined || v === '') return spaces;
        const text = String(v);
        if (text.length > f.length) return fail(`'${text}' is longer than ${f.length}`);
        if (!allowed.test(text)) return fail(f.mixedCase ? 'only printable ASCII may be written' : 'only upper-case printable ASCII may be written');
        return text + spaces.slice(text.length);
      };
    }
  }
}

/** The text of a field whose value is absent: spaces, or zeros for money and plain numbers. */
function defaultText(type: string, f: Field): string {
  if (f.name === 'recordIdentifier') return type;
  return f.kind === 'M' || (f.kind === 'N' && !f.blankable) ? '0'.repeat(f.length) : ' '.repeat(f.length);
}

/**
 * Compiles a layout into a writer; compile once per record type, call per record. When the
 * caller names the fields it fills, every other field is a constant and adjacent constants
 * are joined, so a record costs one step per filled field rather than one per field.
 */
export function recordWriter(layout: Layout, filled?: readonly string[]): (values: FieldValues) => string {
  for (const name of filled ?? []) {
    if (!layout.fields.some((f) => f.name === name)) throw new Error(`EFW2 layout ${layout.type} has no field '${name}'`);
  }
  const steps: (string | FieldWriter)[] = [];
  for (const f of layout.fields) {
    const dynamic = f.name !== 'recordIdentifier' && f.kind !== 'B' && (!filled || filled.includes(f.name));
    const last = steps[steps.length - 1];
    if (dynamic) steps.push(fieldWriter(layout.type, f));
    else if (typeof last === 'string') steps[steps.length - 1] = last + defaultText(layout.type, f);
    else steps.push(defaultText(layout.type, f));
  }
  return (values) => {
    let line = '';
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      line += typeof step === 'string' ? step : step(values);
    }
    if (line.length !== RECORD_LENGTH) throw new RecordFormatError(`EFW2 ${layout.type}: record is ${line.length} characters, not ${RECORD_LENGTH}`);
    return line;
  };
}

/** The raw text of a field in a 512-character record. */
export function fieldText(line: string, f: Field): string {
  return line.slice(f.start - 1, f.start - 1 + f.length);
}

/** A money field's cents, or null when it is not all digits (or the record is too short for it). */
export function moneyValue(line: string, f: Field): number | null {
  const text = fieldText(line, f);
  return text.length === f.length && /^\d+$/.test(text) ? Number(text) : null;
}

export const positions = (f: Field) => `${f.start}-${f.start + f.length - 1}`;
