import type { Violation } from '../types.ts';
import { SUPPORTED_TAX_YEARS } from './amounts.ts';
import { einProblem } from '../../transforms/identifiers/ein.ts';
import { ssnProblem, SSN_NOT_KNOWN } from '../../transforms/identifiers/ssn.ts';
import { bsoUserIdRule } from './identifiers.ts';
import { type Field, type Layout, RW, field } from './layout.ts';
import { STATES } from './places.ts';
import { fieldText, positions } from './record.ts';
import { mask } from './text.ts';

/** Checks one 512-character record of a known type against its layout and the identifier rules. */

/**
 * Collects one record's violations. A class rather than a closure: tsx wraps every closure it
 * creates in a naming helper, which is measurable on a path that runs per field.
 */
class Found {
  readonly list: Violation[] = [];
  constructor(private readonly record: string) {}
  add(field: string, rule: string, message: string): void {
    this.list.push({ record: this.record, field, rule, message });
  }
}

const PRINTABLE = /^[\x20-\x7e]*$/;

/** A field as messages name it: name and positions. */
const where = (f: Field) => `${f.name} (${positions(f)})`;

/** What a message may show of a field: SSNs masked to their last three characters. */
const shown = (f: Field, text: string) => (f.sensitive ? mask(text) : text);

/** `clean`: the whole record is already known to be printable ASCII without lower case. */
function checkField(found: Found, f: Field, text: string, clean: boolean): void {
  if (!clean && !PRINTABLE.test(text)) {
    const bad = [...text].find((c) => !PRINTABLE.test(c))!;
    return found.add(f.name, 'efw2.charset', `${where(f)} has a non-ASCII or control character (code ${bad.charCodeAt(0)})`);
  }
  if (f.kind === 'M') {
    if (!/^\d+$/.test(text))
      found.add(f.name, 'efw2.money', `${where(f)} must be ${f.length} digits of cents, zero-filled with no sign or decimal point, found '${text}'`);
    return;
  }
  const blank = text.trim() === '';
  switch (f.kind) {
    case 'B':
      if (!blank) found.add(f.name, 'efw2.blank', `${where(f)} must be spaces, found '${text}'`);
      return;
    case 'N':
      if (blank) {
        if (f.required) found.add(f.name, 'efw2.required', `${where(f)} is required and is blank`);
        else if (!f.blankable) found.add(f.name, 'efw2.numeric', `${where(f)} must be digits (zero-filled), found blanks`);
        return;
      }
      if (!(f.leftJustified ? /^\d+ *$/ : /^\d+$/).test(text)) {
        found.add(
          f.name,
          'efw2.numeric',
          `${where(f)} must be ${f.leftJustified ? 'digits, left-justified and blank-filled' : `${f.length} digits, right-justified and zero-filled`}, found '${shown(f, text)}'`,
        );
      }
      return;
    case 'A':
      if (f.stateDefined) return;
      if (!clean && !f.mixedCase && /[a-z]/.test(text)) found.add(f.name, 'efw2.case', `${where(f)} must be upper case, found '${text.trimEnd()}'`);
      if (!blank && text[0] === ' ') found.add(f.name, 'efw2.justify', `${where(f)} must be left-justified, found '${text}'`);
      if (f.required && blank) found.add(f.name, 'efw2.required', `${where(f)} is required and is blank`);
      if (f.values && !f.values.includes(text.trim())) {
        found.add(f.name, 'efw2.code', `${where(f)} must be ${f.values.map((v) => (v ? `'${v}'` : 'blank')).join(', ')}; found '${text}'`);
      }
  }
}

/**
 * Fields worth a per-field look. A blank field of a clean record is checked by comparing
 * with a string of spaces; the e-mail fields keep their case, so they are always looked at.
 */
const CHECKED = new Map<Layout, readonly { f: Field; spaces: string }[]>();
function checkedFields(layout: Layout) {
  let list = CHECKED.get(layout);
  if (!list) {
    list = layout.fields.filter((f) => f.name !== 'recordIdentifier').map((f) => ({ f, spaces: ' '.repeat(f.length) }));
    CHECKED.set(layout, list);
  }
  return list;
}

function checkIdentifier(found: Found, f: Field, text: string, kind: 'ein' | 'ssn'): void {
  if (!/^\d{9}$/.test(text)) return; // the format check has reported it
  if (kind === 'ssn' && text === SSN_NOT_KNOWN) return;
  const broken = kind === 'ein' ? einProblem(text) : ssnProblem(text);
  if (broken) found.add(f.name, broken.rule, `${f.name} (${positions(f)}): ${broken.message}`);
}

interface AddressBlock {
  readonly state: Field;
  readonly zip: Field;
  readonly country: Field;
  readonly delivery: Field;
  readonly city: Field;
}

const BLOCKS = new Map<string, AddressBlock>();
function addressBlock(layout: Layout, prefix: string): AddressBlock {
  const key = `${layout.type}/${prefix}`;
  let block = BLOCKS.get(key);
  if (!block) {
    const get = (name: string) => field(layout, prefix ? `${prefix}${name[0]!.toUpperCase()}${name.slice(1)}` : name);
    block = { state: get('state'), zip: get('zip'), country: get('country'), delivery: get('deliveryAddress'), city: get('city') };
    BLOCKS.set(key, block);
  }
  return block;
}

/** Domestic addresses need a USPS state and a ZIP; foreign ones a country code and no state. */
function checkAddress(found: Found, layout: Layout, line: string, prefix: string): void {
  const b = addressBlock(layout, prefix);
  const state = fieldText(line, b.state).trim();
  const country = fieldText(line, b.country).trim();
  if (country) {
    if (!/^[A-Z]{2}$/.test(country)) found.add(b.country.name, 'address.country', `${where(b.country)} must be a two-letter code, found '${country}'`);
    if (state) found.add(b.state.name, 'address.state', `${where(b.state)} must be blank for a foreign address (country '${country}'), found '${state}'`);
    return;
  }
  const used = fieldText(line, b.delivery).trim() !== '' || fieldText(line, b.city).trim() !== '';
  if (state && !STATES.has(state)) found.add(b.state.name, 'address.state', `${where(b.state)} '${state}' is not a USPS state abbreviation`);
  else if (!state && used) found.add(b.state.name, 'address.state', `${where(b.state)} is blank for a US address (no country code)`);
  const zip = fieldText(line, b.zip).trim();
  if (used && !/^\d{5}$/.test(zip)) found.add(b.zip.name, 'address.zip', `${where(b.zip)} must be a 5-digit ZIP for a US address, found '${zip}'`);
}

const UPPER_PRINTABLE = /^[\x20-\x60\x7b-\x7e]*$/;

export function checkRecord(layout: Layout, line: string, record: string): Violation[] {
  const found = new Found(record);
  // One test over the record spares a character-set and a case test per field.
  const clean = UPPER_PRINTABLE.test(line);
  for (const { f, spaces } of checkedFields(layout)) {
    const text = fieldText(line, f);
    if (clean && f.kind === 'B' && text === spaces) continue;
    checkField(found, f, text, clean);
  }
  const text = textOf.bind(null, layout, line);
  switch (layout.type) {
    case 'RA': {
      checkIdentifier(found, field(layout, 'submitterEin'), text('submitterEin'), 'ein');
      const userId = text('userId').trim();
      const broken = userId ? bsoUserIdRule(userId) : null;
      if (broken) found.add('userId', broken.rule, `userId (12-19): ${broken.message}`);
      checkAddress(found, layout, line, 'company');
      checkAddress(found, layout, line, 'submitter');
      break;
    }
    case 'RE': {
      for (const name of ['ein', 'agentForEin', 'otherEin']) {
        if (text(name).trim()) checkIdentifier(found, field(layout, name), text(name), 'ein');
      }
      const year = text('taxYear');
      if (/^\d{4}$/.test(year) && !SUPPORTED_TAX_YEARS.includes(year)) {
        found.add('taxYear', 'efw2.taxYear', `taxYear (3-6) ${year} is not a tax year this layout is valid for (${SUPPORTED_TAX_YEARS.join(', ')})`);
      }
      checkAddress(found, layout, line, '');
      break;
    }
    case 'RW':
      checkIdentifier(found, RW_SSN, fieldText(line, RW_SSN), 'ssn');
      checkAddress(found, layout, line, '');
      break;
    case 'RS':
      if (text('ssn').trim()) checkIdentifier(found, field(layout, 'ssn'), text('ssn'), 'ssn');
      break;
  }
  return found.list;
}

const RW_SSN = field(RW, 'ssn');

function textOf(layout: Layout, line: string, name: string): string {
  return fieldText(line, field(layout, name));
}
