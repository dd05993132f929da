import { readFile } from 'node:fs/promises';
import { validateXML, memoryPages, type XMLFileInfo } from 'xmllint-wasm';
import { ENVELOPE_NS, type TaxYearSpec } from './tax-years.ts';
import { mask } from './text.ts';

/**
 * Validation against HMRC's schemas, vendored unmodified under `schema/`, with libxml2 compiled
 * to WebAssembly. No network: the GovTalk envelope imports the XML-Signature schema from a W3C
 * URL, so a small wrapper schema imports the vendored copy first under the same namespace;
 * libxml2 then skips the envelope's remote import as already satisfied.
 */

const DSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';
const WRAPPER = `<?xml version="1.0" encoding="UTF-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">
<xsd:import namespace="${DSIG_NS}" schemaLocation="xmldsig-core-schema.xsd"/>
<xsd:import namespace="${ENVELOPE_NS}" schemaLocation="envelope.xsd"/>
</xsd:schema>
`;

const schemaCache = new Map<string, Promise<string>>();

function schemaFile(relative: string): Promise<string> {
  let text = schemaCache.get(relative);
  if (!text) {
    text = readFile(new URL(`./schema/${relative}`, import.meta.url), 'utf8');
    schemaCache.set(relative, text);
  }
  return text;
}

export interface XsdError {
  /** Index of the document in the call. */
  readonly doc: number;
  /** Line in that document; null when libxml2 gave none. */
  readonly line: number | null;
  /** Local name of the element the error is about, when the message names one. */
  readonly element: string | null;
  /** Elements the message says are missing ("Expected is ( Gender )"). */
  readonly missing: readonly string[];
  readonly message: string;
}

const docName = (i: number) => `doc${i}.xml`;

/** libxml2's message, without the namespace URIs and with NINO values masked. */
function tidy(message: string, element: string | null): string {
  let m = message.replace(/^(element \S+: )?Schemas validity error : /, '').replace(/\{[a-z]+:\/\/[^}]*\}/g, '');
  if (element === 'NINO') m = m.replace(/(value ')([^']*)(')/g, (_, a: string, v: string, b: string) => `${a}${mask(v)}${b}`);
  return m.trim();
}

function parseOutput(output: string, docs: number): XsdError[] {
  const errors: XsdError[] = [];
  for (const raw of output.split('\n')) {
    const m = /^doc(\d+)\.xml:(\d+): (.*)$/.exec(raw);
    if (!m) continue;
    const doc = Number(m[1]);
    if (doc >= docs) continue;
    const element = /Element '(?:\{[^}]*\})?([^']+)'/.exec(m[3]!)?.[1] ?? null;
    const expected = /Missing child element\(s\)\. Expected is (?:one of )?\(([^)]*)\)/.exec(m[3]!)?.[1] ?? '';
    const missing = expected
      .split(',')
      .map((n) => n.trim().replace(/^\{[^}]*\}/, ''))
      .filter(Boolean);
    errors.push({ doc, line: Number(m[2]), element, missing, message: tidy(m[3]!, element) });
  }
  return errors;
}

async function run(docs: readonly string[], schema: XMLFileInfo, preload: XMLFileInfo[]): Promise<XsdError[]> {
  const xml = docs.map((contents, i) => ({ fileName: docName(i), contents }));
  try {
    const result = await validateXML({ xml, schema: [schema], preload, maxMemoryPages: memoryPages.GiB });
    return parseOutput(result.rawOutput, docs.length);
  } catch (err) {
    // A document that is not well-formed ends the whole run: its parser messages say where.
    const errors = parseOutput(err instanceof Error ? err.message : String(err), docs.length);
    if (!errors.length) throw err;
    return errors;
  }
}

/** Each document (an IRenvelope) against the FPS schema of `year`. */
export async function validateFpsDocs(year: TaxYearSpec, docs: readonly string[]): Promise<XsdError[]> {
  return run(docs, { fileName: 'fps.xsd', contents: await schemaFile(year.fpsXsd) }, []);
}

/** Each document (a whole GovTalk message) against the GovTalk envelope schema. */
export async function validateEnvelopeDocs(year: TaxYearSpec, docs: readonly string[]): Promise<XsdError[]> {
  const [envelope, dsig] = await Promise.all([schemaFile(year.envelopeXsd), schemaFile('support/xmldsig-core-schema.xsd')]);
  return run(docs, { fileName: 'wrapper.xsd', contents: WRAPPER }, [
    { fileName: 'envelope.xsd', contents: envelope },
    { fileName: 'xmldsig-core-schema.xsd', contents: dsig },
  ]);
}
