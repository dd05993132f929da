import { readdir, readFile } from 'node:fs/promises';
import { memoryPages, validateXML, type XMLFileInfo } from 'xmllint-wasm';

/**
 * Validation against CRA's schema package (vendored unmodified in ./schema) with libxml2 in
 * WebAssembly. The entry point T619_T4.xsd includes complex.xsd, which includes every return
 * type, so the whole package is loaded.
 */

const SCHEMA_DIR = new URL('./schema/', import.meta.url);
export const ENTRY_POINT = 'T619_T4.xsd';

export interface XsdError {
  readonly line: number | null;
  readonly message: string;
}

let loaded: Promise<{ entry: XMLFileInfo; others: XMLFileInfo[] }> | undefined;

function schemaFiles() {
  loaded ??= (async () => {
    const names = (await readdir(SCHEMA_DIR)).filter((n) => n.endsWith('.xsd')).sort();
    const files = await Promise.all(names.map(async (fileName) => ({ fileName, contents: await readFile(new URL(fileName, SCHEMA_DIR)) })));
    const entry = files.find((f) => f.fileName === ENTRY_POINT);
    if (!entry) throw new Error(`ca-t4: ${ENTRY_POINT} is missing from ${SCHEMA_DIR.pathname}`);
    return { entry, others: files.filter((f) => f !== entry) };
  })();
  return loaded;
}

/** Schema errors of a document, given as UTF-8 bytes. */
export async function validateAgainstSchema(xml: Uint8Array): Promise<XsdError[]> {
  const { entry, others } = await schemaFiles();
  // Room for the document tree: libxml2 needs several times the file's size.
  const needed = Math.ceil((xml.byteLength * 12) / (64 * 1024)) + 64 * memoryPages.MiB;
  const result = await validateXML({
    xml: [{ fileName: 'submission.xml', contents: xml }],
    schema: [entry],
    preload: others,
    maxMemoryPages: Math.min(memoryPages.max, Math.max(memoryPages.defaultMaxMemoryPages, needed)),
  });
  return result.errors
    .filter((e) => e.message.trim() !== '' && !/No precomputed value available/.test(e.message))
    .map((e) => ({ line: e.loc?.lineNumber ?? null, message: e.message.replace(/^Schemas validity error : /, '') }));
}
