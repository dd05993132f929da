import { digits, int, letters, pick, type Rng } from './prng.ts';

/** Addresses in each country's own shape: street order, postcode format, flat and floor conventions. */

export interface Address {
  line1: string;
  line2: string | null;
  city: string;
  region: string | null;
  postcode: string;
}

interface City {
  name: string;
  region: string | null;
  postcode: (rng: Rng) => string;
}

// GB inward codes never use C I K M O V.
const GB_INWARD = 'ABDEFGHJLNPQRSTUWXYZ';
const gb = (outward: string[]) => (rng: Rng) => `${pick(rng, outward)} ${int(rng, 0, 9)}${letters(rng, 2, GB_INWARD)}`;
const prefixed = (prefix: string, width: number) => (rng: Rng) => `${prefix}${digits(rng, width - prefix.length)}`;
// Canadian postcodes never use D F I O Q U.
const CA_LETTERS = 'ABCEGHJKLMNPRSTVWXYZ';
const ca = (fsa: string[]) => (rng: Rng) => `${pick(rng, fsa)} ${int(rng, 0, 9)}${letters(rng, 1, CA_LETTERS)}${int(rng, 0, 9)}`;
const nl = (prefix: string) => (rng: Rng) => `${prefix}${digits(rng, 2)} ${letters(rng, 2, 'ABCDEGHJKLMNPRTVWXZ')}`;

const CITIES: Record<string, City[]> = {
  GB: [
    { name: 'London', region: null, postcode: gb(['SW1A', 'EC2R', 'N1', 'SE1', 'E14', 'W1D']) },
    { name: 'Manchester', region: null, postcode: gb(['M1', 'M4', 'M15']) },
    { name: 'Edinburgh', region: null, postcode: gb(['EH1', 'EH3', 'EH8']) },
    { name: 'Cardiff', region: null, postcode: gb(['CF10', 'CF24']) },
    { name: 'Belfast', region: null, postcode: gb(['BT1', 'BT7']) },
    { name: 'Bristol', region: null, postcode: gb(['BS1', 'BS8']) },
  ],
  US: [
    { name: 'New York', region: 'NY', postcode: prefixed('100', 5) },
    { name: 'San Francisco', region: 'CA', postcode: prefixed('941', 5) },
    { name: 'Austin', region: 'TX', postcode: prefixed('787', 5) },
    { name: 'Chicago', region: 'IL', postcode: prefixed('606', 5) },
    { name: 'Seattle', region: 'WA', postcode: prefixed('981', 5) },
    { name: 'Boston', region: 'MA', postcode: prefixed('021', 5) },
  ],
  CA: [
    { name: 'Toronto', region: 'ON', postcode: ca(['M5V', 'M4W', 'M6J']) },
    { name: 'Montréal', region: 'QC', postcode: ca(['H2X', 'H3B', 'H2T']) },
    { name: 'Vancouver', region: 'BC', postcode: ca(['V6B', 'V5K']) },
    { name: 'Calgary', region: 'AB', postcode: ca(['T2P', 'T3A']) },
    { name: 'Québec', region: 'QC', postcode: ca(['G1R', 'G1K']) },
  ],
  FR: [
    { name: 'Paris', region: null, postcode: (rng) => `750${String(int(rng, 1, 20)).padStart(2, '0')}` },
    { name: 'Lyon', region: null, postcode: (rng) => `6900${int(rng, 1, 9)}` },
    { name: 'Marseille', region: null, postcode: (rng) => `130${String(int(rng, 1, 16)).padStart(2, '0')}` },
    { name: 'Toulouse', region: null, postcode: () => '31000' },
    { name: 'Bordeaux', region: null, postcode: () => '33000' },
  ],
  NL: [
    { name: 'Amsterdam', region: null, postcode: nl('10') },
    { name: 'Rotterdam', region: null, postcode: nl('30') },
    { name: 'Utrecht', region: null, postcode: nl('35') },
    { name: "'s-Gravenhage", region: null, postcode: nl('25') },
    { name: 'Eindhoven', region: null, postcode: nl('56') },
  ],
  ES: [
    { name: 'Madrid', region: null, postcode: prefixed('280', 5) },
    { name: 'Barcelona', region: null, postcode: prefixed('080', 5) },
    { name: 'València', region: null, postcode: prefixed('460', 5) },
    { name: 'Sevilla', region: null, postcode: prefixed('410', 5) },
    { name: 'A Coruña', region: null, postcode: prefixed('150', 5) },
  ],
  DE: [
    { name: 'Berlin', region: null, postcode: prefixed('10', 5) },
    { name: 'München', region: null, postcode: prefixed('80', 5) },
    { name: 'Hamburg', region: null, postcode: prefixed('20', 5) },
    { name: 'Köln', region: null, postcode: prefixed('50', 5) },
    { name: 'Frankfurt am Main', region: null, postcode: prefixed('60', 5) },
  ],
};

const STREETS: Record<string, string[]> = {
  GB: ['High Street', 'Station Road', 'Church Lane', 'Victoria Road', "King's Road", 'Mill Lane', "St Mary's Close"],
  US: ['Main St', 'Oak Ave', 'Maple Dr', 'Washington Blvd', 'Lakeview Ter', 'Park Ave S', 'Martin Luther King Jr Blvd'],
  CA: ['Yonge St', 'rue Sainte-Catherine O', 'Granville St', 'boul. René-Lévesque', 'Queen St W', 'chemin de la Côte-des-Neiges'],
  FR: ['rue de la Paix', 'avenue Victor-Hugo', 'boulevard Saint-Germain', 'rue des Écoles', "place de l'Hôtel-de-Ville", 'rue du Faubourg-Saint-Honoré'],
  NL: ['Keizersgracht', 'Prinsengracht', 'Coolsingel', 'Oudegracht', 'Lange Voorhout', 'Stratumseind'],
  ES: ['Calle de Alcalá', 'Avinguda Diagonal', 'Calle Mayor', 'Paseo de la Castellana', 'Carrer de Mallorca', 'Rúa Real'],
  DE: ['Hauptstraße', 'Schloßallee', 'Königsallee', 'Friedrichstraße', 'Mühlenweg', 'Straße des 17. Juni'],
};

function streetLine(rng: Rng, country: string): string {
  const street = pick(rng, STREETS[country]!);
  const n = int(rng, 1, country === 'US' ? 9800 : 240);
  switch (country) {
    case 'GB':
    case 'US':
    case 'CA':
    case 'FR':
      return `${n}${country === 'FR' && rng.next() < 0.1 ? ' bis' : ''} ${street}`;
    case 'ES':
      return `${street}, ${n}`;
    default:
      return `${street} ${n}${rng.next() < 0.15 ? letters(rng, 1, 'abc') : ''}`;
  }
}

function secondLine(rng: Rng, country: string): string {
  switch (country) {
    case 'GB':
      return `Flat ${int(rng, 1, 40)}${rng.next() < 0.3 ? letters(rng, 1, 'AB') : ''}`;
    case 'US':
      return rng.next() < 0.5 ? `Apt ${int(rng, 1, 30)}${letters(rng, 1, 'ABCD')}` : `Suite ${int(rng, 100, 2400)}`;
    case 'CA':
      return rng.next() < 0.5 ? `Unit ${int(rng, 100, 3500)}` : `app. ${int(rng, 1, 40)}`;
    case 'FR':
      return `Bâtiment ${letters(rng, 1, 'ABCD')}, ${int(rng, 1, 9)}e étage`;
    case 'ES':
      return `${int(rng, 1, 9)}º ${int(rng, 1, 4)}ª`;
    case 'NL':
      return `${int(rng, 1, 4)}e verdieping`;
    default:
      return `${int(rng, 1, 5)}. OG links`;
  }
}

// Parts of the addresses that break fixed-width filing formats: estates, rural routes, c/o lines.
const LONG_PARTS = [
  'The Old Victorian Cotton Exchange Building',
  'Unit 7 Riverside Enterprise and Innovation Park',
  'Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch Business Centre',
  'Urbanización Residencial Los Jardines de la Sierra Norte',
  "Résidence les Terrasses du Parc de la Tête d'Or",
  'c/o Internationale Betriebsverwaltungsgesellschaft mbH & Co. KG',
  'Rural Route 3, Concession Road 12, Lot 4 North of the Township Line',
  'Entrance via the service road behind the former railway goods yard',
];

export function address(rng: Rng, country: string, long = false): Address {
  const city = pick(rng, CITIES[country]!);
  let line1 = streetLine(rng, country);
  if (long) {
    const parts = [...LONG_PARTS];
    while (line1.length <= 200) line1 = `${parts.splice(int(rng, 0, parts.length - 1), 1)[0]}, ${line1}`;
  }
  return {
    line1,
    line2: rng.next() < 0.35 ? secondLine(rng, country) : null,
    city: city.name,
    region: city.region,
    postcode: city.postcode(rng),
  };
}
