/**
 * Where an address is, as EFW2 writes it: USPS state abbreviations for US addresses (states,
 * DC, territories and the military post offices), a country code for anything else.
 */

export const STATES: ReadonlySet<string> = new Set([
  'AL',
  'AK',
  'AZ',
  'AR',
  'CA',
  'CO',
  'CT',
  'DE',
  'DC',
  'FL',
  'GA',
  'HI',
  'ID',
  'IL',
  'IN',
  'IA',
  'KS',
  'KY',
  'LA',
  'ME',
  'MD',
  'MA',
  'MI',
  'MN',
  'MS',
  'MO',
  'MT',
  'NE',
  'NV',
  'NH',
  'NJ',
  'NM',
  'NY',
  'NC',
  'ND',
  'OH',
  'OK',
  'OR',
  'PA',
  'RI',
  'SC',
  'SD',
  'TN',
  'TX',
  'UT',
  'VT',
  'VA',
  'WA',
  'WV',
  'WI',
  'WY',
  // Territories and freely associated states with USPS addresses, and APO/FPO.
  'AS',
  'FM',
  'GU',
  'MH',
  'MP',
  'PR',
  'PW',
  'VI',
  'AA',
  'AE',
  'AP',
]);

/** ISO country codes that are US postal addresses: their state field carries the code itself. */
const US_POSTAL_COUNTRIES: ReadonlySet<string> = new Set(['US', 'AS', 'GU', 'MP', 'PR', 'VI', 'FM', 'MH', 'PW']);

export const isUsPostal = (iso: string) => US_POSTAL_COUNTRIES.has(iso.toUpperCase());

/**
 * EFW2 country codes of the countries hubflow employs in, in the FIPS 10-4 style IRS e-file
 * specifications use (UK, not GB; GM, not DE; SP, not ES). Inferred, not read in Pub. 42-007:
 * see the README. A country missing here is reported instead of guessed.
 */
const COUNTRY_CODES: Readonly<Record<string, string>> = { GB: 'UK', CA: 'CA', FR: 'FR', NL: 'NL', ES: 'SP', DE: 'GM', IE: 'EI', MX: 'MX' };

export const efw2CountryCode = (iso: string): string | null => COUNTRY_CODES[iso.toUpperCase()] ?? null;

/**
 * ZIP code prefixes (first three digits) of each state, for addresses that carry a ZIP but
 * no state (the hub's org addresses). Ranges follow the USPS prefix allocation.
 */
const ZIP_PREFIXES: readonly (readonly [from: number, to: number, state: string])[] = [
  [5, 5, 'NY'],
  [6, 7, 'PR'],
  [8, 8, 'VI'],
  [9, 9, 'PR'],
  [10, 27, 'MA'],
  [28, 29, 'RI'],
  [30, 38, 'NH'],
  [39, 49, 'ME'],
  [50, 54, 'VT'],
  [55, 55, 'MA'],
  [56, 59, 'VT'],
  [60, 69, 'CT'],
  [70, 89, 'NJ'],
  [90, 98, 'AE'],
  [100, 149, 'NY'],
  [150, 196, 'PA'],
  [197, 199, 'DE'],
  [200, 200, 'DC'],
  [201, 201, 'VA'],
  [202, 205, 'DC'],
  [206, 219, 'MD'],
  [220, 246, 'VA'],
  [247, 268, 'WV'],
  [270, 289, 'NC'],
  [290, 299, 'SC'],
  [300, 319, 'GA'],
  [320, 339, 'FL'],
  [340, 340, 'AA'],
  [341, 349, 'FL'],
  [350, 369, 'AL'],
  [370, 385, 'TN'],
  [386, 397, 'MS'],
  [398, 399, 'GA'],
  [400, 427, 'KY'],
  [430, 459, 'OH'],
  [460, 479, 'IN'],
  [480, 499, 'MI'],
  [500, 528, 'IA'],
  [530, 549, 'WI'],
  [550, 567, 'MN'],
  [569, 569, 'DC'],
  [570, 577, 'SD'],
  [580, 588, 'ND'],
  [590, 599, 'MT'],
  [600, 629, 'IL'],
  [630, 658, 'MO'],
  [660, 679, 'KS'],
  [680, 693, 'NE'],
  [700, 714, 'LA'],
  [716, 729, 'AR'],
  [730, 732, 'OK'],
  [733, 733, 'TX'],
  [734, 749, 'OK'],
  [750, 799, 'TX'],
  [800, 816, 'CO'],
  [820, 831, 'WY'],
  [832, 838, 'ID'],
  [840, 847, 'UT'],
  [850, 865, 'AZ'],
  [870, 884, 'NM'],
  [885, 885, 'TX'],
  [889, 898, 'NV'],
  [900, 961, 'CA'],
  [962, 966, 'AP'],
  [967, 968, 'HI'],
  [969, 969, 'GU'],
  [970, 979, 'OR'],
  [980, 994, 'WA'],
  [995, 999, 'AK'],
];

export function stateFromZip(zip: string): string | null {
  const prefix = Number(zip.slice(0, 3));
  if (!/^\d{5}/.test(zip)) return null;
  return ZIP_PREFIXES.find(([from, to]) => prefix >= from && prefix <= to)?.[2] ?? null;
}

/** '12345' or '12345-6789' (or '123456789') as [zip, extension], or null. */
export function splitZip(postcode: string): [string, string] | null {
  const m = /^(\d{5})(?:-?(\d{4}))?$/.exec(postcode.trim());
  return m ? [m[1]!, m[2] ?? ''] : null;
}
