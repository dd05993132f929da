import { z } from 'zod';
import { FIELD_CLASSES, type FieldClass } from '../transforms/mask.ts';

export { FIELD_CLASSES, type FieldClass };

/** The kinds of national identifier a worker record may carry. */
export const NATIONAL_ID_TYPES = ['NINO', 'SSN', 'SIN', 'NIR', 'BSN', 'DNI', 'NIE', 'STEUER_ID'] as const;
export type NationalIdType = (typeof NATIONAL_ID_TYPES)[number];

/**
 * The hub's entities as configuration, not code: a real hub whose tables or columns are named
 * differently is mapped by another object of this shape (`parseEntities`), and everything that
 * reads the hub goes through it. Fields are the names hubflow uses; `column` is the hub's name
 * for one when it differs.
 *
 * Reference data (countries, currencies) is global: keyed by its ISO code, shared by every
 * tenant, and has no tenant column at all (`tenantScoped: false`, `tenantColumn: null`). A
 * per-tenant extract joins it unfiltered; a tenant-scoped entity always has a non-null tenant
 * column that leads its primary key, so a row can never change tenant under the same key.
 */

export const COLUMN_TYPES = ['text', 'integer', 'numeric', 'date', 'timestamptz', 'boolean'] as const;

const identifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]*$/, 'lower-case SQL identifier')
  .max(63);

const columnSchema = z.object({
  type: z.enum(COLUMN_TYPES),
  class: z.enum(FIELD_CLASSES),
  /** The hub's column name; default: the field name. */
  column: identifier.optional(),
  nullable: z.boolean().default(false),
  /** Text only: the most characters a value may have; a longer one rejects its record. */
  maxLength: z.number().int().positive().optional(),
  /** Text only: the values allowed (an enumeration); any other rejects its record. */
  values: z.array(z.string()).min(1).optional(),
});

const entitySchema = z
  .object({
    name: identifier,
    table: identifier,
    /** Fields of the key within a tenant (the whole key for global entities). */
    key: z.array(identifier).min(1),
    tenantScoped: z.boolean(),
    tenantColumn: identifier.nullable(),
    updatedAtColumn: identifier,
    /** Key and tracked fields; tracked = every field not in the key. */
    columns: z.record(identifier, columnSchema),
    /** Extra indexes by fields; the tenant column is put first on tenant-scoped entities. */
    indexes: z.array(z.array(identifier).min(1)).default([]),
    /** Demo hub only: keys are this prefix plus a number from the sequence `<table>_id_seq`. */
    idPrefix: z
      .string()
      .regex(/^[A-Z]{1,3}$/)
      .optional(),
  })
  .superRefine((e, ctx) => {
    const issue = (message: string, path: (string | number)[]) => ctx.addIssue({ code: 'custom', message, path });
    if (e.tenantScoped !== (e.tenantColumn !== null)) issue('a tenant-scoped entity needs a tenant column, a global one must have none', ['tenantColumn']);
    e.key.forEach((f, i) => {
      if (!e.columns[f]) issue(`key field '${f}' is not among the columns`, ['key', i]);
      else if (e.columns[f].nullable) issue(`key field '${f}' cannot be nullable`, ['key', i]);
    });
    for (const [f, c] of Object.entries(e.columns)) {
      if (c.type !== 'text' && (c.maxLength !== undefined || c.values)) issue(`field '${f}': maxLength and values apply to text fields only`, ['columns', f]);
      const long = c.maxLength !== undefined && c.values?.find((v) => v.length > c.maxLength!);
      if (long) issue(`field '${f}': allowed value '${long}' is longer than maxLength ${c.maxLength}`, ['columns', f, 'values']);
    }
    e.indexes.forEach((fields, i) => fields.forEach((f) => e.columns[f] || issue(`index field '${f}' is not among the columns`, ['indexes', i])));
    if (e.idPrefix && (e.key.length !== 1 || e.columns[e.key[0]!]?.type !== 'text')) issue('idPrefix needs a single text key', ['idPrefix']);
    const names = [...Object.entries(e.columns).map(([f, c]) => c.column ?? f), e.updatedAtColumn, ...(e.tenantColumn ? [e.tenantColumn] : [])];
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) issue(`column '${dup}' appears twice`, ['columns']);
  });

const entitiesSchema = z.record(identifier, entitySchema).superRefine((all, ctx) => {
  for (const [name, e] of Object.entries(all)) {
    if (e.name !== name) ctx.addIssue({ code: 'custom', message: `entity '${name}' is named '${e.name}'`, path: [name, 'name'] });
  }
});

export type ColumnType = (typeof COLUMN_TYPES)[number];
export type EntityInput = z.input<typeof entitySchema>;
export type Entity = z.output<typeof entitySchema>;
export type Entities = Record<string, Entity>;

/** Validates a hub mapping; the message names the entity and field at fault. */
export function parseEntities(input: Record<string, EntityInput>): Entities {
  const parsed = entitiesSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid hub entity configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** The hub's column name for a field (or for the tenant or updated-at role). */
export function columnOf(entity: Entity, field: string): string {
  const column = entity.columns[field];
  if (!column) throw new Error(`entity '${entity.name}' has no field '${field}'`);
  return column.column ?? field;
}

export function trackedFields(entity: Entity): string[] {
  return Object.keys(entity.columns).filter((f) => !entity.key.includes(f));
}

const text = (cls: FieldClass, nullable = false, limits: { maxLength?: number; values?: readonly string[] } = {}) => ({
  type: 'text' as const,
  class: cls,
  nullable,
  ...(limits.maxLength !== undefined ? { maxLength: limits.maxLength } : {}),
  ...(limits.values ? { values: [...limits.values] } : {}),
});
/** ISO 3166-1 alpha-2 and ISO 4217 codes. */
const COUNTRY = { maxLength: 2 } as const;
const CURRENCY = { maxLength: 3 } as const;
const date = (cls: FieldClass, nullable = false) => ({ type: 'date' as const, class: cls, nullable });
const money = (nullable = false) => ({ type: 'numeric' as const, class: 'financial' as const, nullable });
const tenant = { tenantScoped: true, tenantColumn: 'tenant_id', updatedAtColumn: 'updated_at' } as const;
const global = { tenantScoped: false, tenantColumn: null, updatedAtColumn: 'updated_at' } as const;

/** The demo hub's layout. */
export const HUB_ENTITIES: Entities = parseEntities({
  countries: {
    name: 'countries',
    table: 'countries',
    key: ['code'],
    ...global,
    columns: {
      code: text('operational', false, COUNTRY),
      name: text('descriptive'),
      currency_code: text('operational', false, CURRENCY),
      national_id_type: text('operational', true, { values: NATIONAL_ID_TYPES }),
    },
  },
  currencies: {
    name: 'currencies',
    table: 'currencies',
    key: ['code'],
    ...global,
    columns: {
      code: text('operational', false, CURRENCY),
      name: text('descriptive'),
      minor_units: { type: 'integer', class: 'operational' },
      symbol: text('descriptive'),
    },
  },
  clients: {
    name: 'clients',
    table: 'clients',
    key: ['client_id'],
    ...tenant,
    idPrefix: 'C',
    columns: {
      client_id: text('operational'),
      name: text('descriptive'),
      billing_country: text('operational', false, COUNTRY),
      billing_currency: text('financial', false, CURRENCY),
      contact_email: text('pii', true),
      status: text('operational', false, { values: ['active', 'paused', 'offboarded'] }),
    },
  },
  orgs: {
    name: 'orgs',
    table: 'orgs',
    key: ['org_id'],
    ...tenant,
    idPrefix: 'O',
    indexes: [['client_id']],
    columns: {
      org_id: text('operational'),
      client_id: text('operational'),
      legal_name: text('descriptive'),
      country: text('operational', false, COUNTRY),
      /** Company registry number: Companies House, SIREN, KvK, CIF, HRB, state file number. */
      registration_number: text('operational'),
      /** UK Corporation Tax UTR, US EIN, CA BN, FR VAT number, NL RSIN, ES CIF, DE Steuernummer. */
      tax_id: text('operational'),
      /** UK PAYE employer reference, CA payroll program account (BN15 RP), FR SIRET, NL loonheffingennummer, ES CCC, DE Betriebsnummer. */
      payroll_ref: text('operational', true),
      /** UK only: the Accounts Office reference PAYE payments quote. */
      accounts_office_ref: text('operational', true),
      address_line1: text('descriptive'),
      city: text('descriptive'),
      postcode: text('descriptive'),
      employer_of_record: { type: 'boolean', class: 'operational' },
    },
  },
  workers: {
    name: 'workers',
    table: 'workers',
    key: ['worker_id'],
    ...tenant,
    idPrefix: 'W',
    columns: {
      worker_id: text('operational'),
      given_name: text('pii'),
      family_name: text('pii'),
      birth_date: date('pii'),
      /** As the person's tax record holds it ('F' or 'M'): HMRC's FPS requires it. */
      gender: text('pii', true, { values: ['F', 'M'] }),
      national_id: text('pii'),
      national_id_type: text('operational', false, { values: NATIONAL_ID_TYPES }),
      address_line1: text('pii'),
      address_line2: text('pii', true),
      city: text('pii'),
      region: text('pii', true),
      postcode: text('pii'),
      country: text('pii', false, COUNTRY),
      email: text('pii', true),
      /** IBAN where the country has one, else the account number. */
      bank_account: text('financial'),
      /** US ABA routing number or CA transit-institution; null where the IBAN says it all. */
      bank_code: text('financial', true),
      hire_date: date('operational'),
      termination_date: date('operational', true),
      status: text('operational', false, { values: ['active', 'on_leave', 'terminated'] }),
    },
  },
  contracts: {
    name: 'contracts',
    table: 'contracts',
    key: ['contract_id'],
    ...tenant,
    idPrefix: 'K',
    indexes: [['worker_id'], ['org_id']],
    columns: {
      contract_id: text('operational'),
      worker_id: text('operational'),
      org_id: text('operational'),
      country: text('operational', false, COUNTRY),
      job_title: text('descriptive'),
      salary: money(),
      currency: text('financial', false, CURRENCY),
      pay_frequency: text('operational', false, { values: ['weekly', 'fortnightly', 'four_weekly', 'monthly', 'quarterly', 'half_yearly', 'annual'] }),
      hours_per_week: { type: 'integer', class: 'operational' },
      full_time: { type: 'boolean', class: 'operational' },
      start_date: date('operational'),
      end_date: date('operational', true),
    },
  },
  payroll_results: {
    name: 'payroll_results',
    table: 'payroll_results',
    key: ['worker_id', 'period_start'],
    ...tenant,
    columns: {
      worker_id: text('operational'),
      period_start: date('operational'),
      contract_id: text('operational'),
      period_end: date('operational'),
      pay_date: date('operational'),
      currency: text('financial', false, CURRENCY),
      gross: money(),
      income_tax: money(),
      employee_social: money(),
      employer_social: money(),
      net: money(),
      /** UK PAYE tax code (e.g. 1257L) and National Insurance category letter; null elsewhere. */
      tax_code: text('operational', true),
      ni_category: text('operational', true),
      approved_at: { type: 'timestamptz', class: 'operational' },
    },
  },
});
