/** Code lists the T4 uses: provinces and territories, and country codes (CRA writes ISO alpha-3). */

/** Canadian provinces and territories as CRA's 2026 specification writes them (upper case). */
export const PROVINCES: ReadonlySet<string> = new Set(['AB', 'BC', 'MB', 'NB', 'NL', 'NS', 'NT', 'NU', 'ON', 'PE', 'QC', 'SK', 'YT']);

/** Province of employment also takes US (employed in the United States) and ZZ (outside Canada and the US). */
export const EMPLOYMENT_PROVINCES: ReadonlySet<string> = new Set([...PROVINCES, 'US', 'ZZ']);

// ISO 3166-1 alpha-2 to alpha-3 for the countries workers and transmitters are found in.
const ALPHA3: Readonly<Record<string, string>> = {
  CA: 'CAN',
  US: 'USA',
  GB: 'GBR',
  IE: 'IRL',
  FR: 'FRA',
  NL: 'NLD',
  BE: 'BEL',
  LU: 'LUX',
  DE: 'DEU',
  AT: 'AUT',
  CH: 'CHE',
  ES: 'ESP',
  PT: 'PRT',
  IT: 'ITA',
  DK: 'DNK',
  SE: 'SWE',
  NO: 'NOR',
  FI: 'FIN',
  IS: 'ISL',
  PL: 'POL',
  CZ: 'CZE',
  GR: 'GRC',
  RO: 'ROU',
  HU: 'HUN',
  IN: 'IND',
  CN: 'CHN',
  HK: 'HKG',
  JP: 'JPN',
  KR: 'KOR',
  SG: 'SGP',
  PH: 'PHL',
  AU: 'AUS',
  NZ: 'NZL',
  MX: 'MEX',
  BR: 'BRA',
  AR: 'ARG',
  CL: 'CHL',
  CO: 'COL',
  ZA: 'ZAF',
  NG: 'NGA',
  AE: 'ARE',
  IL: 'ISR',
  TR: 'TUR',
  UA: 'UKR',
  EG: 'EGY',
  MA: 'MAR',
  PK: 'PAK',
  VN: 'VNM',
};

/** The alpha-3 code CRA expects for an ISO alpha-2 country, or null when this plugin does not know it. */
export function alpha3(country: string): string | null {
  return ALPHA3[country.toUpperCase()] ?? null;
}
