import { readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { validateXML } from 'xmllint-wasm';
import fps from '../../jurisdictions/gb-rti-fps/index.ts';
import type { Address, FilingEmployee, FilingEmployer, FilingPeriod, RenderInput, RenderTotals, Submitter } from '../../jurisdictions/types.ts';

export const SCHEMA = new URL('../../jurisdictions/gb-rti-fps/schema/', import.meta.url);
export const schema = (file: string) => readFile(new URL(file, SCHEMA), 'utf8');

export const home: Address = { line1: '14 Station Road', line2: 'Flat 3B', city: 'Manchester', region: null, postcode: 'm1 4bt', country: 'GB' };

export function employer(): FilingEmployer {
  return {
    tenantId: 'acme',
    orgId: 'O000012',
    legalName: 'Acme Analytics UK Ltd',
    country: 'GB',
    taxId: '2234567890',
    payrollRef: '120/AB45678',
    accountsOfficeRef: '120PS00045678',
    address: { line1: "1 King's Road", line2: null, city: 'London', region: null, postcode: 'SW1A 1AA', country: 'GB' },
  };
}

export function submitter(name = 'Acme Analytics UK Ltd'): Submitter {
  return {
    name,
    authorityId: null,
    taxId: null,
    address: employer().address,
    contact: { name: 'Payroll Team', phone: '020 7946 0000', email: 'payroll@acme.example' },
  };
}

export function period(id: string): FilingPeriod {
  const found = fps.periods(new Date('2025-04-01'), new Date('2027-05-01')).find((p) => p.id === id);
  if (!found) throw new Error(`no period ${id}`);
  return found;
}

/** Realistic monthly payroll figures in pence: gross, PAYE, employee and employer NICs. */
export function employee(n: number, over: Partial<FilingEmployee> = {}): FilingEmployee {
  const gross = 250_000 + n * 12_345;
  const tax = Math.round((gross - 104_750) * 0.2);
  const ee = Math.round((gross - 104_800) * 0.08);
  const er = Math.round((gross - 41_700) * 0.15);
  return {
    tenantId: 'acme',
    orgId: 'O000012',
    workerId: `W${String(n).padStart(6, '0')}`,
    contractId: `K${String(n).padStart(6, '0')}`,
    givenName: ['Oliver', 'Siobhán', 'Łukasz', 'Zoë', 'Mary-Kate'][n % 5]!,
    familyName: ['Taylor', "O'Brien", 'Wiśniewski', 'Ó Súilleabháin', 'Fitzgerald-Hughes'][n % 5]!,
    birthDate: `19${70 + (n % 30)}-0${1 + (n % 9)}-1${n % 10}`,
    gender: n % 2 ? 'F' : 'M',
    nationalId: `AB${String(100000 + n).slice(-6)}C`,
    nationalIdType: 'NINO',
    address: home,
    hireDate: '2019-09-02',
    terminationDate: null,
    payFrequency: 'monthly',
    taxCode: n % 4 === 3 ? 'S1257L' : '1257L',
    niCategory: 'A',
    payDate: '2025-11-28',
    period: { gross, incomeTax: tax, employeeSocial: ee, employerSocial: er, net: gross - tax - ee },
    yearToDate: { gross: gross * 8, incomeTax: tax * 8, employeeSocial: ee * 8, employerSocial: er * 8, net: (gross - tax - ee) * 8 },
    ...over,
  };
}

export async function* stream<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

export async function render(
  p: FilingPeriod,
  employees: readonly FilingEmployee[],
  extra: Partial<RenderInput> = {},
): Promise<{ xml: string; totals: RenderTotals }> {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  const input: RenderInput = { employer: employer(), submitter: submitter(), period: p, generatedAt: new Date('2025-11-25T09:30:00Z'), test: false, ...extra };
  const totals = await fps.render(input, stream(employees), out);
  return { xml: Buffer.concat(chunks).toString('utf8'), totals };
}

/** The IRenvelope of a message as a document of its own (it declares its namespace itself). */
export const irEnvelope = (xml: string) => xml.slice(xml.indexOf('<IRenvelope'), xml.indexOf('</IRenvelope>') + '</IRenvelope>'.length);

export async function fpsSchemaErrors(xml: string, xsd: string): Promise<string[]> {
  const r = await validateXML({ xml: [{ fileName: 'fps.xml', contents: irEnvelope(xml) }], schema: [{ fileName: 'fps.xsd', contents: await schema(xsd) }] });
  return r.errors.map((e) => e.message);
}

/** The envelope imports xmldsig from a W3C URL: a wrapper imports the vendored copy first, offline. */
export async function envelopeErrors(xml: string, envelopeXsd: string): Promise<string[]> {
  const wrapper = `<?xml version="1.0"?><xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">
<xsd:import namespace="http://www.w3.org/2000/09/xmldsig#" schemaLocation="xmldsig-core-schema.xsd"/>
<xsd:import namespace="http://www.govtalk.gov.uk/CM/envelope" schemaLocation="envelope.xsd"/></xsd:schema>`;
  const r = await validateXML({
    xml: [{ fileName: 'msg.xml', contents: xml }],
    schema: [{ fileName: 'wrapper.xsd', contents: wrapper }],
    preload: [
      { fileName: 'envelope.xsd', contents: await schema(envelopeXsd) },
      { fileName: 'xmldsig-core-schema.xsd', contents: await schema('support/xmldsig-core-schema.xsd') },
    ],
  });
  return r.errors.filter((e) => e.loc?.fileName === 'msg.xml').map((e) => e.message);
}

export const sum = (list: readonly FilingEmployee[], pick: (e: FilingEmployee) => number) => list.reduce((s, e) => s + pick(e), 0);
