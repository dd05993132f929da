import { describe, expect, it } from 'vitest';
import { isoOf, planVersions, type Timed, type Version } from '../../cdc/history.ts';
import type { CdcChange, Row } from '../../cdc/sink.ts';
import { HUB_ENTITIES, trackedFields } from '../../hub/entities.ts';
import { decodeCanonical } from '../../transforms/row-hash.ts';

const currencies = HUB_ENTITIES.currencies!;
const row = (name: string): Row => ({ code: 'EUR', name, minor_units: '2', symbol: '€' });
const change = (op: CdcChange['op'], before: Row | null, after: Row | null, seq = 0): CdcChange => ({
  entity: 'currencies',
  op,
  tenant: null,
  key: { code: 'EUR' },
  before,
  after,
  updatedAt: '2026-03-01 09:30:00.5+00',
  seq,
});
const at = (t: string, c: CdcChange): Timed => ({ change: c, at: t });
/** A version's `name`, read back from its encoded tracked values. */
const nameOf = (v: Version) => decodeCanonical(v.tracked)[trackedFields(currencies).indexOf('name')];

describe('planVersions', () => {
  it('makes one version per commit, each closed by the next, the last current', () => {
    const v = planVersions(currencies, [
      at('2026-03-01T10:00:00.000001Z', change('insert', null, row('Euro'))),
      at('2026-03-01T10:00:00.000002Z', change('update', row('Euro'), row('euro'))),
      at('2026-03-01T10:00:00.000003Z', change('delete', row('euro'), null)),
    ]);
    expect(v.map((x) => [x.validFrom, x.validTo, x.isCurrent, x.isDeleted, nameOf(x)])).toEqual([
      ['2026-03-01T10:00:00.000001Z', '2026-03-01T10:00:00.000002Z', false, false, 'Euro'],
      ['2026-03-01T10:00:00.000002Z', '2026-03-01T10:00:00.000003Z', false, false, 'euro'],
      ['2026-03-01T10:00:00.000003Z', null, true, true, 'euro'],
    ]);
    expect(v[0]!.updatedAt).toBe('2026-03-01T09:30:00.500000Z');
  });

  it("keeps a transaction's state at commit, and no version equal to the one before it", () => {
    const t = '2026-03-01T10:00:00.000001Z';
    const undone = [at(t, change('update', row('Euro'), row('EURO'), 0)), at(t, change('update', row('EURO'), row('Euro'), 1))];
    const again = at('2026-03-01T10:00:00.000002Z', change('update', row('Euro'), row('Euro')));
    const v = planVersions(currencies, [...undone, again]);
    // One version, the state at commit, first of its key: the warehouse drops it where it repeats the current row.
    expect(v.map((x) => [x.validFrom, nameOf(x), x.isFirst, x.isCurrent])).toEqual([[t, 'Euro', true, true]]);
  });

  it('reads timestamps as the server prints them in UTC', () => {
    expect(isoOf('2026-03-01 09:30:00+00')).toBe('2026-03-01T09:30:00.000000Z');
    expect(() => isoOf('2026-03-01 09:30:00+02')).toThrow(/not a UTC timestamp/);
  });
});
