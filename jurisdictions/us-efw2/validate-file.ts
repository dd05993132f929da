import { decimal } from '../common.ts';
import type { RenderTotals, Violation } from '../types.ts';
import { checkRecord } from './field-checks.ts';
import { LAYOUTS, RECORD_LENGTH, RF, RO, RT, RU, RW, type RecordType, field, moneyFields } from './layout.ts';
import { readLines } from './lines.ts';
import { fieldText, moneyValue, positions } from './record.ts';

/**
 * Checks an EFW2 file, whoever wrote it: record length and CR LF, record order, every field
 * against the layout tables, identifier rules, and the RT/RU/RF totals against the records
 * they total. Streams line by line; memory holds one employer group's running sums.
 */

/** RT/RU money fields that total a same-named RW/RO field. */
const sumsOf = (total: typeof RT, detail: typeof RW) =>
  moneyFields(total)
    .filter((t) => detail.fields.some((d) => d.name === t.name))
    .map((t) => ({ total: t, detail: field(detail, t.name) }));
const RT_SUMS = sumsOf(RT, RW);
const RU_SUMS = sumsOf(RU, RO);

interface Group {
  readonly line: number;
  rw: number;
  ro: number;
  rs: number;
  /** Running sums, indexed like RT_SUMS / RU_SUMS. */
  readonly rwSums: number[];
  readonly roSums: number[];
  /** 'detail' until RT, then 'totals'. */
  phase: 'detail' | 'totals';
  ru: boolean;
  rv: boolean;
  /** The record before, for RO/RS placement. */
  previous: RecordType;
}

const newGroup = (line: number): Group => ({
  line,
  rw: 0,
  ro: 0,
  rs: 0,
  rwSums: RT_SUMS.map(() => 0),
  roSums: RU_SUMS.map(() => 0),
  phase: 'detail',
  ru: false,
  rv: false,
  previous: 'RE',
});

const CRLF_PROBLEM = {
  lf: 'record ends with LF only; EFW2 records end with CR LF',
  none: 'last record has no CR LF line ending',
  cut: 'no line ending within 64 KiB: the file is not made of CR LF terminated records',
} as const;

export async function validateFile(path: string): Promise<{ totals: RenderTotals; violations: Violation[] }> {
  const violations: Violation[] = [];
  const at = (record: string) => (fieldName: string, rule: string, message: string) => violations.push({ record, field: fieldName, rule, message });
  const stated = new Map<string, number>(moneyFields(RT).map((f) => [f.name, 0]));
  let statedRecords: number | null = null;
  let rtRecords = 0;
  let rwTotal = 0;
  let raSeen = false;
  let rfLine: number | null = null;
  let group: Group | null = null;
  let lines = 0;

  const closeGroup = (emit: ReturnType<typeof at>) => {
    if (!group) return;
    if (group.phase === 'detail') emit('recordIdentifier', 'efw2.order', `the employer group that starts at record ${group.line} (RE) has no RT record`);
    else if (group.ro > 0 && !group.ru)
      emit('recordIdentifier', 'efw2.order', `the employer group that starts at record ${group.line} (RE) has RO records but no RU record`);
    group = null;
  };

  for await (const { number, text, ending } of readLines(path)) {
    lines = number;
    const type = text.slice(0, 2) as RecordType;
    const known = Object.hasOwn(LAYOUTS, type);
    const record = known ? `record ${number} (${type})` : `record ${number}`;
    const emit = at(record);
    if (ending !== 'crlf') emit('recordIdentifier', 'efw2.crlf', CRLF_PROBLEM[ending]);
    const fullLength = text.length === RECORD_LENGTH;
    if (!fullLength)
      emit('recordIdentifier', 'efw2.length', `record is ${text.length} bytes long; every EFW2 record is exactly ${RECORD_LENGTH} bytes plus CR LF`);
    if (!known) {
      emit('recordIdentifier', 'efw2.recordType', `record identifier '${text.slice(0, 2)}' is not RA, RE, RW, RO, RS, RT, RU, RV or RF`);
      continue;
    }
    // A record of the wrong length has shifted fields: field checks would only add noise.
    if (fullLength) violations.push(...checkRecord(LAYOUTS[type], text, record));
    if (rfLine !== null) {
      emit('recordIdentifier', 'efw2.order', `record follows the RF record (record ${rfLine}), which must be the last`);
      continue;
    }
    if (type === 'RA') {
      if (number !== 1 || raSeen) emit('recordIdentifier', 'efw2.order', 'the RA record must be the first record, and the only RA');
      raSeen = true;
      continue;
    }
    if (!raSeen && number === 1) emit('recordIdentifier', 'efw2.order', `the file must start with an RA record, not ${type}`);
    if (type === 'RE') {
      closeGroup(emit);
      group = newGroup(number);
      continue;
    }
    if (type === 'RF') {
      closeGroup(emit);
      rfLine = number;
      const countText = fieldText(text, field(RF, 'numberOfRw'));
      const count = /^\d+$/.test(countText) ? Number(countText) : NaN;
      if (Number.isFinite(count)) {
        statedRecords = count;
        if (count !== rwTotal)
          emit('numberOfRw', 'efw2.totals', `numberOfRw (${positions(field(RF, 'numberOfRw'))}) states ${count} RW records; the file has ${rwTotal}`);
      }
      continue;
    }
    const g: Group | null = group;
    if (!g) {
      emit('recordIdentifier', 'efw2.order', `${type} record outside an employer group: an RE record must come before it`);
      continue;
    }
    switch (type) {
      case 'RW':
      case 'RO':
      case 'RS':
        if (g.phase !== 'detail') {
          emit('recordIdentifier', 'efw2.order', `${type} record after the employer group's RT record (started at record ${g.line})`);
          break;
        }
        if (type === 'RO' && g.previous !== 'RW') emit('recordIdentifier', 'efw2.order', 'an RO record must directly follow its RW record');
        if (type === 'RS' && g.previous === 'RE') emit('recordIdentifier', 'efw2.order', 'an RS record must follow its RW (or RO) record');
        if (type === 'RW') {
          g.rw++;
          rwTotal++;
          for (let i = 0; i < RT_SUMS.length; i++) g.rwSums[i]! += moneyValue(text, RT_SUMS[i]!.detail) ?? 0;
        } else if (type === 'RO') {
          g.ro++;
          for (let i = 0; i < RU_SUMS.length; i++) g.roSums[i]! += moneyValue(text, RU_SUMS[i]!.detail) ?? 0;
        } else g.rs++;
        break;
      case 'RT': {
        if (g.phase !== 'detail') {
          emit('recordIdentifier', 'efw2.order', `second RT record in the employer group that starts at record ${g.line}`);
          break;
        }
        g.phase = 'totals';
        rtRecords++;
        const countField = field(RT, 'numberOfRw');
        const count = Number(fieldText(text, countField));
        if (count !== g.rw)
          emit(
            'numberOfRw',
            'efw2.totals',
            `numberOfRw (${positions(countField)}) states ${fieldText(text, countField)} RW records; the employer group has ${g.rw}`,
          );
        for (const f of moneyFields(RT)) stated.set(f.name, stated.get(f.name)! + (moneyValue(text, f) ?? 0));
        for (const [i, { total, detail }] of RT_SUMS.entries()) {
          const value = moneyValue(text, total);
          const sum = g.rwSums[i]!;
          if (value !== null && value !== sum) {
            emit(
              total.name,
              'efw2.totals',
              `${total.name} (${positions(total)}) states ${decimal(value)}; the ${g.rw} RW records since the RE sum to ${decimal(sum)} (RW ${positions(detail)})`,
            );
          }
        }
        break;
      }
      case 'RU': {
        if (g.phase !== 'totals' || g.ru || g.rv) {
          emit('recordIdentifier', 'efw2.order', 'an RU record must directly follow the RT record of its employer group');
          break;
        }
        g.ru = true;
        if (g.ro === 0) emit('recordIdentifier', 'efw2.order', 'RU record in an employer group without RO records');
        const countField = field(RU, 'numberOfRo');
        const count = Number(fieldText(text, countField));
        if (count !== g.ro)
          emit(
            'numberOfRo',
            'efw2.totals',
            `numberOfRo (${positions(countField)}) states ${fieldText(text, countField)} RO records; the employer group has ${g.ro}`,
          );
        for (const [i, { total, detail }] of RU_SUMS.entries()) {
          const value = moneyValue(text, total);
          const sum = g.roSums[i]!;
          if (value !== null && value !== sum) {
            emit(
              total.name,
              'efw2.totals',
              `${total.name} (${positions(total)}) states ${decimal(value)}; the ${g.ro} RO records since the RE sum to ${decimal(sum)} (RO ${positions(detail)})`,
            );
          }
        }
        break;
      }
      case 'RV':
        if (g.phase !== 'totals' || g.rv) emit('recordIdentifier', 'efw2.order', 'an RV record must follow the RT (and RU) record of its employer group, once');
        else if (g.ro > 0 && !g.ru) emit('recordIdentifier', 'efw2.order', 'the RU record must come before the RV record');
        if (g.rs === 0) emit('recordIdentifier', 'efw2.order', 'RV record in an employer group without RS records');
        g.rv = true;
        break;
    }
    g.previous = type;
  }

  const end = at('file');
  if (lines === 0) end('recordIdentifier', 'efw2.order', 'the file is empty');
  else {
    if (!raSeen) end('recordIdentifier', 'efw2.order', 'the file has no RA record');
    closeGroup(end);
    if (rtRecords === 0) end('recordIdentifier', 'efw2.order', 'the file has no employer group (RE ... RT)');
    if (rfLine === null) end('recordIdentifier', 'efw2.order', 'the file has no RF record; it must end with one');
  }
  return { totals: { records: statedRecords ?? rwTotal, money: Object.fromEntries(stated) }, violations };
}
