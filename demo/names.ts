import { pick, weighted, type Rng } from './prng.ts';

/**
 * Name pools by culture. Workers of every country come from many cultures, so names carry
 * accents, apostrophes, particles and non-Latin scripts as real payroll data does. A non-Latin
 * entry carries its romanisation after '|', which e-mail addresses use.
 */

type Culture = 'en' | 'fr' | 'es' | 'de' | 'nl' | 'pl' | 'nordic' | 'in' | 'zh' | 'el' | 'ru' | 'ar';

const POOLS: Record<Culture, { given: string[]; family: string[] }> = {
  en: {
    given: [
      'Oliver',
      'Amelia',
      'James',
      'Olivia',
      'Harry',
      'Isla',
      'Jack',
      'Emily',
      'Noah',
      'Sophie',
      'Liam',
      'Grace',
      'Zoë',
      'Siobhán',
      'Seán',
      'Aoife',
      'Renée',
      'Chloé',
      'Mary-Kate',
      "D'Arcy",
    ],
    family: [
      'Smith',
      'Jones',
      'Taylor',
      'Brown',
      'Williams',
      'Wilson',
      'Johnson',
      'Davies',
      "O'Brien",
      'MacDonald',
      'Fitzgerald-Hughes',
      'Ó Súilleabháin',
      'Evans',
      'Thompson',
    ],
  },
  fr: {
    given: ['Camille', 'Léa', 'Manon', 'Hélène', 'Jérôme', 'François', 'Benoît', 'Anaïs', 'Gaëlle', 'Noël', 'Loïc', 'Marie-Ève', 'Chloé', 'Théo'],
    family: [
      'Martin',
      'Bernard',
      'Dubois',
      'Lefèvre',
      'Girard',
      'Moreau',
      'Fontaine',
      'Rousseau',
      'Bélanger',
      'Lemaître',
      'Gagné',
      'Côté',
      'de La Rochefoucauld',
    ],
  },
  es: {
    given: ['José', 'María', 'Lucía', 'Álvaro', 'Begoña', 'Íñigo', 'Nuria', 'Sofía', 'Martín', 'Andrés', 'María José', 'Àngels'],
    family: ['García', 'Fernández', 'López', 'Martínez', 'Sánchez', 'Pérez', 'Gómez', 'Núñez', 'Ibáñez', 'Muñoz', 'de la Fuente', 'Puig i Vilà'],
  },
  de: {
    given: ['Jürgen', 'Jörg', 'Björn', 'Lena', 'Mia', 'Lukas', 'Uwe', 'Käthe', 'Günther', 'Anna-Lena', 'Maximilian'],
    family: ['Müller', 'Schröder', 'Weiß', 'Groß', 'Köhler', 'Schäfer', 'Fischer', 'Becker', 'Hoffmann', 'Straßburger', 'von Bülow'],
  },
  nl: {
    given: ['Daan', 'Sem', 'Lotte', 'Fenna', 'Sanne', 'Joost', 'Maaike', 'Thijs', 'Eline', 'Bram'],
    family: ['de Vries', 'van den Berg', 'Jansen', 'Bakker', 'van Dijk', 'Visser', 'Smit', 'de Jong', "van 't Hek", 'IJzerman'],
  },
  pl: {
    given: ['Łukasz', 'Małgorzata', 'Paweł', 'Agnieszka', 'Wojciech', 'Zofia', 'Michał', 'Katarzyna', 'Jędrzej'],
    family: ['Kowalski', 'Nowak', 'Wiśniewski', 'Wójcik', 'Kamiński', 'Lewandowska', 'Zieliński', 'Szymańska', 'Grzegorzewski'],
  },
  nordic: {
    given: ['Søren', 'Åsa', 'Bjørn', 'Ingrid', 'Kjell', 'Maja', 'Sigrún', 'Þóra', 'Æsa'],
    family: ['Jørgensen', 'Nielsen', 'Hansen', 'Ødegård', 'Åberg', 'Lindqvist', 'Sigurðsson', 'Kierkegaard'],
  },
  in: {
    given: ['Priya', 'Arjun', 'Ananya', 'Rohan', 'Aditi', 'Vikram', 'Lakshmi', 'Siddharth'],
    family: ['Sharma', 'Iyer', 'Patel', 'Reddy', 'Gupta', 'Venkataraman', 'Chatterjee', 'Nair'],
  },
  zh: {
    given: ['芳|Fang', '伟|Wei', '娜|Na', '静|Jing', '磊|Lei', '洋|Yang', '秀英|Xiuying', '子涵|Zihan'],
    family: ['王|Wang', '李|Li', '张|Zhang', '刘|Liu', '陈|Chen', '杨|Yang', '欧阳|Ouyang'],
  },
  el: {
    given: ['Αλέξανδρος|Alexandros', 'Μαρία|Maria', 'Γιώργος|Giorgos', 'Ελένη|Eleni', 'Δημήτρης|Dimitris'],
    family: ['Παπαδόπουλος|Papadopoulos', 'Οικονόμου|Oikonomou', 'Γεωργίου|Georgiou', 'Νικολάου|Nikolaou'],
  },
  ru: {
    given: ['Мария|Maria', 'Александр|Aleksandr', 'Ольга|Olga', 'Дмитрий|Dmitry', 'Наталья|Natalya'],
    family: ['Иванова|Ivanova', 'Смирнов|Smirnov', 'Кузнецова|Kuznetsova', 'Попов|Popov', 'Соколов|Sokolov'],
  },
  ar: {
    given: ['محمد|Mohammed', 'فاطمة|Fatima', 'أحمد|Ahmed', 'ليلى|Layla', 'يوسف|Youssef', 'نور|Nour'],
    family: ['العلي|Al-Ali', 'حسن|Hassan', 'منصور|Mansour', 'الخطيب|Al-Khatib', 'عبد الله|Abdullah'],
  },
};

const NON_LATIN: Culture[] = ['zh', 'el', 'ru', 'ar'];

/** Who works where: mostly local names, always some from elsewhere. */
const CULTURES_BY_COUNTRY: Record<string, [Culture, number][]> = {
  GB: [
    ['en', 55],
    ['pl', 8],
    ['in', 8],
    ['fr', 4],
    ['es', 4],
    ['zh', 5],
    ['ar', 5],
    ['el', 3],
    ['ru', 3],
    ['nordic', 2],
    ['de', 3],
  ],
  US: [
    ['en', 58],
    ['es', 16],
    ['zh', 7],
    ['in', 7],
    ['ar', 4],
    ['ru', 3],
    ['el', 2],
    ['pl', 2],
    ['de', 1],
  ],
  CA: [
    ['en', 45],
    ['fr', 25],
    ['zh', 10],
    ['in', 8],
    ['ar', 5],
    ['ru', 3],
    ['pl', 2],
    ['el', 2],
  ],
  FR: [
    ['fr', 70],
    ['ar', 10],
    ['es', 5],
    ['en', 4],
    ['pl', 3],
    ['zh', 4],
    ['ru', 2],
    ['el', 2],
  ],
  NL: [
    ['nl', 65],
    ['ar', 8],
    ['en', 7],
    ['de', 6],
    ['pl', 5],
    ['zh', 4],
    ['fr', 2],
    ['el', 3],
  ],
  ES: [
    ['es', 75],
    ['ar', 6],
    ['en', 5],
    ['fr', 4],
    ['ru', 3],
    ['zh', 3],
    ['de', 2],
    ['nordic', 2],
  ],
  DE: [
    ['de', 65],
    ['pl', 8],
    ['ar', 6],
    ['ru', 6],
    ['el', 5],
    ['en', 4],
    ['zh', 3],
    ['nl', 3],
  ],
};

export interface Name {
  text: string;
  /** ASCII for e-mail addresses. */
  ascii: string;
}

function toName(entry: string): Name {
  const [text, roman] = entry.split('|') as [string, string | undefined];
  return { text, ascii: asciiOf(roman ?? text) };
}

const FOLD: Record<string, string> = { ł: 'l', Ł: 'L', ø: 'o', Ø: 'O', ß: 'ss', æ: 'ae', Æ: 'Ae', œ: 'oe', þ: 'th', Þ: 'Th', ð: 'd', đ: 'd' };

function asciiOf(s: string): string {
  return s
    .replace(/[łŁøØßæÆœþÞðđ]/g, (c) => FOLD[c]!)
    .normalize('NFD')
    .replace(/[^A-Za-z]/g, '')
    .toLowerCase();
}

// Folded once at load: seeding names a million workers.
const NAMES = Object.fromEntries(
  Object.entries(POOLS).map(([culture, pool]) => [culture, { given: pool.given.map(toName), family: pool.family.map(toName) }]),
) as Record<Culture, { given: Name[]; family: Name[] }>;

export function personName(rng: Rng, country: string, forceNonLatin = false): { given: Name; family: Name; local: boolean } {
  const culture = forceNonLatin ? pick(rng, NON_LATIN) : weighted(rng, CULTURES_BY_COUNTRY[country] ?? CULTURES_BY_COUNTRY.GB!);
  const pool = NAMES[culture];
  return { given: pick(rng, pool.given), family: pick(rng, pool.family), local: CULTURES_BY_COUNTRY[country]?.[0]?.[0] === culture };
}

const MAIL_DOMAINS = ['gmail.com', 'outlook.com', 'yahoo.co.uk', 'proton.me', 'web.de', 'orange.fr', 'ziggo.nl', 'icloud.com', 'hotmail.es', 'shaw.ca'];

export function email(rng: Rng, given: Name, family: Name): string {
  const suffix = rng.next() < 0.4 ? String(Math.floor(rng.next() * 100)) : '';
  const sep = pick(rng, ['.', '_', '']);
  return `${given.ascii || 'user'}${sep}${family.ascii || 'mail'}${suffix}@${pick(rng, MAIL_DOMAINS)}`;
}

const COMPANY_STEMS = [
  'Northwind',
  'Globex',
  'Initech',
  'Umbrella',
  'Stark',
  'Wayne',
  'Acme',
  'Hooli',
  'Vandelay',
  'Soylent',
  'Tyrell',
  'Cyberdyne',
  'Aperture',
  'Wonka',
  'Oscorp',
  'Gringotts',
  'Monarch',
  'Pied Piper',
  'Massive Dynamic',
  'Blue Sun',
];
const COMPANY_KINDS = ['Analytics', 'Logistics', 'Health', 'Robotics', 'Foods', 'Energy', 'Software', 'Media', 'Biotech', 'Consulting'];

export function companyName(rng: Rng, index: number): string {
  // The index keeps names distinct across tenants even when the pools repeat.
  const stem = COMPANY_STEMS[index % COMPANY_STEMS.length]!;
  const round = Math.floor(index / COMPANY_STEMS.length);
  return `${stem} ${pick(rng, COMPANY_KINDS)}${round ? ` ${round + 1}` : ''}`;
}

const BY_TEXT = new Map(Object.values(NAMES).flatMap((pool) => [...pool.given, ...pool.family].map((n) => [n.text, n] as const)));

/** An address for a name already in the hub; names from elsewhere are folded to ASCII. */
export function emailFor(rng: Rng, given: string, family: string): string {
  const known = (text: string) => BY_TEXT.get(text) ?? { text, ascii: asciiOf(text) };
  return email(rng, known(given), known(family));
}
